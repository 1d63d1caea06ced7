//! Prometheus' JSON result shapes, written by hand: results can hold
//! millions of points, and the exact number and timestamp formatting
//! matters to clients that compare text (`promtool`, Grafana).

use std::fmt::Write as _;

use sextant_query::value::Value;
use sextant_storage::{Histogram, Labels};

/// `{"status":"success","data":DATA}` plus the annotations, if any:
/// `warnings`, and `infos` for those PromQL marks as information (as
/// Prometheus' API splits them).
pub fn success(data: &str, annotations: &[String]) -> String {
    let mut out = String::with_capacity(data.len() + 64);
    out.push_str("{\"status\":\"success\",\"data\":");
    out.push_str(data);
    let (infos, warnings): (Vec<&String>, Vec<&String>) = annotations
        .iter()
        .partition(|a| a.starts_with(sextant_query::INFO_PREFIX));
    for (key, list) in [("warnings", warnings), ("infos", infos)] {
        if !list.is_empty() {
            out.push_str(&format!(",\"{key}\":"));
            out.push_str(&serde_json::to_string(&list).unwrap_or_else(|_| "[]".into()));
        }
    }
    out.push('}');
    out
}

/// The `data` of a query or query_range response.
pub fn query_data(v: &Value, t: i64) -> String {
    let mut out = String::new();
    match v {
        Value::Scalar(x) => {
            out.push_str("{\"resultType\":\"scalar\",\"result\":");
            point(&mut out, t, *x);
        }
        Value::Str(s) => {
            out.push_str("{\"resultType\":\"string\",\"result\":[");
            timestamp(&mut out, t);
            out.push(',');
            string(&mut out, s);
            out.push(']');
        }
        Value::Vector(elems) => {
            out.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (i, e) in elems.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                labels(&mut out, &e.labels);
                match &e.h {
                    Some(h) => {
                        out.push_str(",\"histogram\":");
                        histogram_point(&mut out, t, h);
                    }
                    None => {
                        out.push_str(",\"value\":");
                        point(&mut out, t, e.v);
                    }
                }
                out.push('}');
            }
            out.push(']');
        }
        // The Prometheus endpoints refuse record queries before running
        // them; the unified endpoint writes records itself.
        Value::Logs(_) | Value::Spans(_) | Value::Traces(_) => {
            out.push_str("{\"resultType\":\"records\",\"result\":[]}");
        }
        Value::Matrix(series) => {
            out.push_str("{\"resultType\":\"matrix\",\"result\":[");
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                labels(&mut out, &s.labels);
                // As Prometheus: each list only when the series has such points.
                if !s.points.is_empty() || s.histograms.is_empty() {
                    out.push_str(",\"values\":[");
                    for (j, p) in s.points.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        point(&mut out, p.t, p.v);
                    }
                    out.push(']');
                }
                if !s.histograms.is_empty() {
                    out.push_str(",\"histograms\":[");
                    for (j, p) in s.histograms.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        histogram_point(&mut out, p.t, &p.h);
                    }
                    out.push(']');
                }
                out.push('}');
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

/// A label set as a JSON object.
pub fn labels(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, (n, v)) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, n);
        out.push(':');
        string(out, v);
    }
    out.push('}');
}

/// `[t,{"count":"c","sum":"s","buckets":[[boundaries,"lower","upper","n"],…]}]`
/// as Prometheus writes a native histogram: buckets in value order, empty
/// ones left out; `boundaries` says which ends are inclusive (0: the
/// upper, 1: the lower, 3: both).
pub fn histogram_point(out: &mut String, t: i64, h: &Histogram) {
    out.push('[');
    timestamp(out, t);
    out.push_str(",{\"count\":\"");
    number(out, h.count);
    out.push_str("\",\"sum\":\"");
    number(out, h.sum);
    out.push('"');
    let buckets: Vec<_> = h
        .buckets_ascending()
        .into_iter()
        .filter(|b| b.count != 0.0)
        .collect();
    if !buckets.is_empty() {
        out.push_str(",\"buckets\":[");
        for (i, b) in buckets.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let boundaries = if b.lower < 0.0 && b.upper > 0.0 {
                3
            } else if b.upper <= 0.0 && !h.custom_buckets() {
                1
            } else {
                0
            };
            let _ = write!(out, "[{boundaries},\"");
            number(out, b.lower);
            out.push_str("\",\"");
            number(out, b.upper);
            out.push_str("\",\"");
            number(out, b.count);
            out.push_str("\"]");
        }
        out.push(']');
    }
    out.push_str("}]");
}

/// `[t,"v"]`.
pub fn point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    timestamp(out, t);
    out.push_str(",\"");
    number(out, v);
    out.push_str("\"]");
}

/// Milliseconds as Prometheus prints them: seconds with the milliseconds
/// as exactly three decimals, none if they are zero.
pub fn timestamp(out: &mut String, t: i64) {
    if t < 0 {
        out.push('-');
    }
    let a = t.unsigned_abs();
    let _ = write!(out, "{}", a / 1000);
    if !a.is_multiple_of(1000) {
        let _ = write!(out, ".{:03}", a % 1000);
    }
}

/// A sample value as Go's `strconv.FormatFloat(v, 'f', -1, 64)` prints it.
pub fn number(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A JSON string literal.
pub fn string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_query::value::Elem;

    #[test]
    fn numbers_and_timestamps_print_as_prometheus_prints_them() {
        let mut s = String::new();
        for (t, v) in [
            (1_435_781_451_781, 1.0),
            (1_000, 0.1),
            (1_500, f64::NAN),
            (-1_500, f64::INFINITY),
            (20, f64::NEG_INFINITY),
            (0, 1e21),
            (0, -0.000_001),
        ] {
            point(&mut s, t, v);
        }
        assert_eq!(
            s,
            "[1435781451.781,\"1\"][1,\"0.1\"][1.500,\"NaN\"][-1.500,\"+Inf\"][0.020,\"-Inf\"]\
             [0,\"1000000000000000000000\"][0,\"-0.000001\"]"
        );
    }

    #[test]
    fn a_vector_has_the_documented_shape() {
        let v = Value::Vector(vec![Elem::float(
            Labels::new([("__name__", "up"), ("job", "a\"b")]).unwrap(),
            1.0,
        )]);
        let got: serde_json::Value =
            serde_json::from_str(&success(&query_data(&v, 2_000), &[])).unwrap();
        assert_eq!(
            got,
            serde_json::json!({"status": "success", "data": {"resultType": "vector",
                "result": [{"metric": {"__name__": "up", "job": "a\"b"}, "value": [2, "1"]}]}})
        );
    }

    #[test]
    fn a_native_histogram_is_written_as_prometheus_writes_it() {
        let h = sextant_histogram::parse_notation(
            "{{schema:0 sum:5 count:5 z_bucket:1 z_bucket_w:0.001 buckets:[1 0 2] n_buckets:[1]}}",
        )
        .unwrap();
        let l = Labels::new([("__name__", "h")]).unwrap();
        let v = Value::Vector(vec![Elem::histogram(
            l.clone(),
            std::sync::Arc::new(h.clone()),
        )]);
        let got: serde_json::Value = serde_json::from_str(&query_data(&v, 2_000)).unwrap();
        let want = serde_json::json!({"count": "5", "sum": "5", "buckets": [
            [1, "-1", "-0.5", "1"],
            [3, "-0.001", "0.001", "1"],
            [0, "0.5", "1", "1"],
            [0, "2", "4", "2"]
        ]});
        assert_eq!(got["result"][0]["histogram"], serde_json::json!([2, want]));
        let m = Value::Matrix(vec![sextant_query::value::RangeSeries {
            labels: l,
            points: Vec::new(),
            histograms: vec![sextant_storage::HistogramSample::new(1_000, h)],
            drop_name: false,
        }]);
        let got: serde_json::Value = serde_json::from_str(&query_data(&m, 0)).unwrap();
        assert_eq!(
            got["result"][0]["histograms"],
            serde_json::json!([[1, want]])
        );
        assert!(got["result"][0].get("values").is_none());
    }
}
