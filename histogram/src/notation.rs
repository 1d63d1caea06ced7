//! The notation Prometheus' PromQL test scripts (and promtool's rule
//! tests) write histograms in:
//! `{{schema:0 count:4 sum:5 z_bucket:1 z_bucket_w:0.001 offset:1
//! buckets:[1 2] n_offset:0 n_buckets:[1] counter_reset_hint:gauge
//! custom_values:[0.1 1]}}`. Every field is optional; buckets are one run
//! starting at their offset.

use crate::{CounterReset, Error, Histogram, Result};

fn number(key: &str, s: &str) -> Result<f64> {
    let v = match s {
        "Inf" | "+Inf" | "inf" | "+inf" => f64::INFINITY,
        "-Inf" | "-inf" => f64::NEG_INFINITY,
        "NaN" | "nan" => f64::NAN,
        _ => s
            .parse::<f64>()
            .map_err(|_| Error::Notation(format!("{key}: {s:?} is not a number")))?,
    };
    Ok(v)
}

fn integer(key: &str, s: &str) -> Result<i32> {
    s.parse::<i32>()
        .map_err(|_| Error::Notation(format!("{key}: {s:?} is not an integer")))
}

fn list(key: &str, s: &str) -> Result<Vec<f64>> {
    let inner = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| Error::Notation(format!("{key}: expected [n n …], got {s:?}")))?;
    inner.split_whitespace().map(|v| number(key, v)).collect()
}

/// Splits the inside of `{{…}}` into `key:value` items; a value in
/// brackets may hold spaces.
fn items(inner: &str) -> Result<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let colon = rest
            .find(':')
            .ok_or_else(|| Error::Notation(format!("expected key:value at {rest:?}")))?;
        let key = rest[..colon].trim();
        let after = rest[colon + 1..].trim_start();
        let end = if after.starts_with('[') {
            after
                .find(']')
                .map(|i| i + 1)
                .ok_or_else(|| Error::Notation(format!("{key}: unclosed [")))?
        } else {
            after.find(char::is_whitespace).unwrap_or(after.len())
        };
        out.push((key, &after[..end]));
        rest = after[end..].trim_start();
    }
    Ok(out)
}

/// Reads one histogram written as `{{…}}`.
pub fn parse_notation(text: &str) -> Result<Histogram> {
    let inner = text
        .trim()
        .strip_prefix("{{")
        .and_then(|s| s.strip_suffix("}}"))
        .ok_or_else(|| Error::Notation(format!("{text:?} is not {{{{…}}}}")))?;
    let mut h = Histogram::default();
    let (mut offset, mut n_offset) = (0i32, 0i32);
    let (mut buckets, mut n_buckets) = (Vec::new(), Vec::new());
    for (key, value) in items(inner)? {
        match key {
            "schema" => h.schema = integer(key, value)?,
            "count" => h.count = number(key, value)?,
            "sum" => h.sum = number(key, value)?,
            "z_bucket" => h.zero_count = number(key, value)?,
            "z_bucket_w" => h.zero_threshold = number(key, value)?,
            "offset" => offset = integer(key, value)?,
            "n_offset" => n_offset = integer(key, value)?,
            "buckets" => buckets = list(key, value)?,
            "n_buckets" => n_buckets = list(key, value)?,
            "custom_values" => h.custom_values = list(key, value)?,
            "counter_reset_hint" => {
                h.hint = match value {
                    "unknown" => CounterReset::Unknown,
                    "reset" => CounterReset::Reset,
                    "not_reset" => CounterReset::NotReset,
                    "gauge" => CounterReset::Gauge,
                    _ => {
                        return Err(Error::Notation(format!(
                            "counter_reset_hint: {value:?} is not unknown, reset, not_reset or \
                             gauge"
                        )));
                    }
                }
            }
            _ => return Err(Error::Notation(format!("unknown field {key:?}"))),
        }
    }
    for (key, offset, list) in [
        ("offset", offset, &buckets),
        ("n_offset", n_offset, &n_buckets),
    ] {
        if i64::from(offset) + list.len() as i64 > i64::from(i32::MAX) {
            return Err(Error::Notation(format!(
                "{key} {offset}: the buckets run past the last index"
            )));
        }
    }
    h.positive = (offset..).zip(buckets).collect();
    h.negative = (n_offset..).zip(n_buckets).collect();
    Ok(h)
}

/// One run of buckets from the first to the last listed (gaps as 0), and
/// its offset.
fn one_run(buckets: &[(i32, f64)]) -> (i32, Vec<f64>) {
    let Some(&(first, _)) = buckets.first() else {
        return (0, Vec::new());
    };
    let last = buckets.last().map_or(first, |b| b.0);
    let mut run = vec![0.0; (i64::from(last) - i64::from(first) + 1) as usize];
    for &(i, c) in buckets {
        run[(i64::from(i) - i64::from(first)) as usize] = c;
    }
    (first, run)
}

fn write_list(out: &mut Vec<String>, key: &str, v: &[f64]) {
    let items: Vec<String> = v.iter().map(|x| format!("{x}")).collect();
    out.push(format!("{key}:[{}]", items.join(" ")));
}

/// Writes `h` in the notation, leaving out fields at their defaults.
pub fn to_notation(h: &Histogram) -> String {
    let mut out = Vec::new();
    if h.schema != 0 && !h.custom_buckets() {
        out.push(format!("schema:{}", h.schema));
    }
    if h.count != 0.0 {
        out.push(format!("count:{}", h.count));
    }
    if h.sum != 0.0 {
        out.push(format!("sum:{}", h.sum));
    }
    if h.zero_count != 0.0 {
        out.push(format!("z_bucket:{}", h.zero_count));
    }
    if h.zero_threshold != 0.0 {
        out.push(format!("z_bucket_w:{}", h.zero_threshold));
    }
    if h.custom_buckets() {
        write_list(&mut out, "custom_values", &h.custom_values);
    }
    match h.hint {
        CounterReset::Unknown => {}
        CounterReset::Reset => out.push("counter_reset_hint:reset".into()),
        CounterReset::NotReset => out.push("counter_reset_hint:not_reset".into()),
        CounterReset::Gauge => out.push("counter_reset_hint:gauge".into()),
    }
    for (buckets, offset_key, key) in [
        (&h.positive, "offset", "buckets"),
        (&h.negative, "n_offset", "n_buckets"),
    ] {
        let (offset, run) = one_run(buckets);
        if offset != 0 {
            out.push(format!("{offset_key}:{offset}"));
        }
        if !run.is_empty() {
            write_list(&mut out, key, &run);
        }
    }
    format!("{{{{{}}}}}", out.join(" "))
}
