//! Aggregation operators over the series of an instant vector, grouped by
//! `by`/`without` labels.

use sextant_storage::{Labels, METRIC_NAME};

use crate::ast::AggOp;
use crate::error::{Error, Result};
use crate::value::{Elem, Value, filter_labels, set_label};

pub(crate) use sextant_histogram::KahanSum;

/// Prometheus' quantile over sorted values with linear interpolation.
pub(crate) fn quantile(phi: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || phi.is_nan() {
        return f64::NAN;
    }
    if phi < 0.0 {
        return f64::NEG_INFINITY;
    }
    if phi > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts before every number, as Go's sort.Float64s orders it.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = values.len() as f64;
    let rank = phi * (n - 1.0);
    let lo = rank.floor().max(0.0) as usize;
    let hi = (lo + 1).min(values.len() - 1);
    let w = rank - rank.floor();
    values[lo] * (1.0 - w) + values[hi] * w
}

/// The mean as Prometheus computes it: infinities decide the result (NaN
/// when both signs occur); otherwise a compensated sum, or an incremental
/// mean when that sum overflows.
pub(crate) fn mean(values: &[f64]) -> f64 {
    let (pos, neg) = (
        values.contains(&f64::INFINITY),
        values.contains(&f64::NEG_INFINITY),
    );
    if values.iter().any(|v| v.is_nan()) || (pos && neg) {
        return f64::NAN;
    }
    if pos || neg {
        return if pos {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
    }
    let mut k = KahanSum::default();
    values.iter().for_each(|v| k.add(*v));
    let s = k.value();
    if s.is_finite() {
        return s / values.len() as f64;
    }
    let mut m = KahanSum::default();
    for v in values {
        m.add(v / values.len() as f64);
    }
    m.value()
}

/// Population variance by Welford's method.
pub(crate) fn variance(values: &[f64]) -> f64 {
    let (mut mean, mut m2) = (0.0, 0.0);
    for (i, v) in values.iter().enumerate() {
        let d = v - mean;
        mean += d / (i + 1) as f64;
        m2 += d * (v - mean);
    }
    m2 / values.len() as f64
}

/// The value of an aggregation that needs nothing but the group's values
/// (in input order); `None` for the others (topk, quantile, …).
pub(crate) fn simple(op: AggOp, values: &[f64]) -> Option<f64> {
    Some(match op {
        AggOp::Sum => {
            let mut k = KahanSum::default();
            values.iter().for_each(|v| k.add(*v));
            k.value()
        }
        AggOp::Avg => mean(values),
        AggOp::Count | AggOp::CountValues => values.len() as f64,
        AggOp::Group => 1.0,
        AggOp::Min => values
            .iter()
            .copied()
            .fold(f64::NAN, |a, v| if a.is_nan() || v < a { v } else { a }),
        AggOp::Max => values
            .iter()
            .copied()
            .fold(f64::NAN, |a, v| if a.is_nan() || v > a { v } else { a }),
        AggOp::Stdvar => variance(values),
        AggOp::Stddev => variance(values).sqrt(),
        _ => return None,
    })
}

pub(crate) fn group_key(labels: &Labels, grouping: &[String], without: bool) -> Labels {
    if without {
        let mut drop = grouping.to_vec();
        drop.push(METRIC_NAME.to_string());
        filter_labels(labels, &drop, false)
    } else {
        filter_labels(labels, grouping, true)
    }
}

pub(crate) fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// Grouping keys already computed, per aggregation node and input series:
/// a range query groups the same series at every step.
pub(crate) type KeyCache = rustc_hash::FxHashMap<(usize, Labels), Labels>;

pub(crate) fn eval(
    op: AggOp,
    input: Vec<Elem>,
    param: Option<Value>,
    grouping: &[String],
    without: bool,
    (node, keys): (usize, &mut KeyCache),
    notes: &mut crate::native::Notes,
) -> Result<Vec<Elem>> {
    let scalar = |p: &Option<Value>| match p {
        Some(Value::Scalar(v)) => Ok(*v),
        _ => Err(Error::Eval(format!(
            "{} needs a scalar parameter",
            op.name()
        ))),
    };
    if matches!(
        op,
        AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio
    ) && scalar(&param)?.is_nan()
    {
        let what = if op == AggOp::LimitRatio {
            "Ratio"
        } else {
            "Parameter"
        };
        return Err(Error::Eval(format!("{what} value is NaN")));
    }
    // Groups in first-seen order.
    let mut order: Vec<Labels> = Vec::new();
    let mut groups: rustc_hash::FxHashMap<Labels, Vec<Elem>> = Default::default();
    for el in input {
        let mut key = keys
            .entry((node, el.labels.clone()))
            .or_insert_with(|| group_key(&el.labels, grouping, without))
            .clone();
        if op == AggOp::CountValues {
            let Some(Value::Str(label)) = &param else {
                return Err(Error::Eval("count_values needs a string parameter".into()));
            };
            let value = match &el.h {
                Some(h) => crate::native::describe(h, format_value),
                None => format_value(el.v),
            };
            key = set_label(&key, label, &value);
        }
        groups
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(el);
    }
    if op == AggOp::CountValues
        && let Some(Value::Str(label)) = &param
        && (label.is_empty() || !label.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()))
    {
        return Err(Error::Eval(format!("invalid label name {label:?}")));
    }
    let mut out = Vec::new();
    for key in order {
        let Some(mut els) = groups.remove(&key) else {
            continue;
        };
        // The group's name (when grouped by it) goes if any member's does;
        // count_values makes new series.
        let drop_name = op != AggOp::CountValues && els.iter().any(|e| e.drop_name);
        if els.iter().any(|e| e.h.is_some()) {
            match op {
                AggOp::Sum | AggOp::Avg => {
                    let refs: Vec<&Elem> = els.iter().collect();
                    let first = els[0].labels.clone();
                    if let Some(h) =
                        crate::native::aggregate_group(op == AggOp::Avg, &refs, &first, notes)
                    {
                        out.push(Elem {
                            drop_name,
                            ..Elem::histogram(key, std::sync::Arc::new(h))
                        });
                    }
                    continue;
                }
                // They count series, whatever their samples.
                AggOp::Count
                | AggOp::CountValues
                | AggOp::Group
                | AggOp::Limitk
                | AggOp::LimitRatio => {}
                _ => {
                    crate::native::ignored_in_aggregation(notes, op.name());
                    els.retain(|e| e.h.is_none());
                    if els.is_empty() {
                        continue;
                    }
                }
            }
        }
        let values: Vec<f64> = els.iter().map(|e| e.v).collect();
        let v = match op {
            AggOp::Sum
            | AggOp::Avg
            | AggOp::Count
            | AggOp::CountValues
            | AggOp::Group
            | AggOp::Min
            | AggOp::Max
            | AggOp::Stdvar
            | AggOp::Stddev => simple(op, &values).unwrap_or(f64::NAN),
            AggOp::Quantile => quantile(scalar(&param)?, &mut values.clone()),
            AggOp::Topk | AggOp::Bottomk | AggOp::Limitk => {
                let k = scalar(&param)?;
                let k = if k >= 1.0 {
                    k.min(els.len() as f64) as usize
                } else {
                    0
                };
                let mut els = els;
                match op {
                    AggOp::Topk => els.sort_by(|a, b| cmp_desc(a.v, b.v)),
                    AggOp::Bottomk => els.sort_by(|a, b| cmp_asc(a.v, b.v)),
                    _ => {}
                }
                out.extend(els.into_iter().take(k));
                continue;
            }
            AggOp::LimitRatio => {
                // A negative ratio keeps the complement of the positive one:
                // limit_ratio(-0.3, x) is what limit_ratio(0.7, x) leaves out.
                let r = scalar(&param)?.clamp(-1.0, 1.0);
                out.extend(els.into_iter().filter(|e| {
                    let s = ratio_sample(&e.labels);
                    if r >= 0.0 { s < r } else { s >= 1.0 + r }
                }));
                continue;
            }
        };
        out.push(Elem {
            drop_name,
            ..Elem::float(key, v)
        });
    }
    Ok(out)
}

/// Descending, NaN last.
fn cmp_desc(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.total_cmp(&a),
    }
}

/// Ascending, NaN last.
fn cmp_asc(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.total_cmp(&b),
    }
}

/// A stable pseudo-random number in [0, 1] per label set, so that
/// `limit_ratio` keeps the same series at every step: Prometheus' label
/// hash (XXH64 of each name and value followed by 0xff) over the largest
/// u64, so both servers keep the same series.
fn ratio_sample(labels: &Labels) -> f64 {
    let mut b = Vec::with_capacity(256);
    for (n, v) in labels.iter() {
        b.extend_from_slice(n.as_bytes());
        b.push(0xff);
        b.extend_from_slice(v.as_bytes());
        b.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&b, 0) as f64 / u64::MAX as f64
}
