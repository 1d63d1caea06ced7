//! PromQL functions over floats, following Prometheus 3.x semantics.

use std::sync::Arc;

use regex::Regex;
use sextant_storage::{Labels, METRIC_NAME, Sample};

use crate::aggregate::{KahanSum, mean, quantile, variance};
use crate::ast::Expr;
use crate::engine::Eval;
use crate::error::{Error, Result};
use crate::native::WindowOut;
use crate::value::{Elem, NameCache, RangeSeries, Value, set_label};

fn vector(v: Value) -> Vec<Elem> {
    match v {
        Value::Vector(v) => v,
        _ => Vec::new(),
    }
}

fn scalar(v: &Value) -> f64 {
    match v {
        Value::Scalar(s) => *s,
        _ => f64::NAN,
    }
}

fn string(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        _ => String::new(),
    }
}

/// Applies `f` to every float element; histograms have no result.
fn map(names: &mut NameCache, v: Vec<Elem>, f: impl Fn(f64) -> f64) -> Value {
    Value::Vector(
        v.into_iter()
            .filter(|e| e.h.is_none())
            .map(|e| Elem { v: f(e.v), ..e }.unnamed(names))
            .collect(),
    )
}

/// Evaluation-time boundaries of a range argument: (start, end) in ms.
fn range_bounds(ev: &Eval<'_>, arg: &Expr, t: i64) -> (i64, i64) {
    match arg {
        Expr::Matrix(vs, range) => {
            let te = ev.effective(vs.at, vs.offset, t);
            (te - range, te)
        }
        Expr::Subquery {
            range, offset, at, ..
        } => {
            let te = ev.effective(*at, *offset, t);
            (te - range, te)
        }
        Expr::Paren(x) => range_bounds(ev, x, t),
        _ => (t, t),
    }
}

/// Applies `f` to every series of a range argument; `keep_name` keeps
/// `__name__` (last_over_time and first_over_time do).
fn over_time(
    names: &mut NameCache,
    m: Vec<RangeSeries>,
    keep_name: bool,
    f: impl Fn(&[Sample]) -> Option<f64>,
) -> Value {
    Value::Vector(
        m.into_iter()
            .filter_map(|s| {
                let v = f(&s.points)?;
                let e = Elem {
                    drop_name: s.drop_name,
                    ..Elem::float(s.labels, v)
                };
                Some(if keep_name { e } else { e.unnamed(names) })
            })
            .collect(),
    )
}

/// Applies `window` to every series of a range argument; `keep_name`
/// keeps `__name__` (which still goes, late, when the series' own name
/// was to).
fn over_windows(
    ev: &mut Eval<'_>,
    m: Vec<RangeSeries>,
    keep_name: bool,
    mut window: impl FnMut(&mut crate::native::Notes, &RangeSeries) -> WindowOut,
) -> Value {
    let mut out = Vec::with_capacity(m.len());
    for s in m {
        let e = match window(&mut ev.warnings, &s) {
            WindowOut::Float(v) => Elem::float(s.labels, v),
            WindowOut::Hist(h) => Elem::histogram(s.labels, Arc::new(h)),
            WindowOut::Nothing => continue,
        };
        let e = Elem {
            drop_name: s.drop_name,
            ..e
        };
        out.push(if keep_name {
            e
        } else {
            e.unnamed(&mut ev.names)
        });
    }
    Value::Vector(out)
}

/// The float result of `f` as a window's output.
fn float_out(v: Option<f64>) -> WindowOut {
    v.map_or(WindowOut::Nothing, WindowOut::Float)
}

/// [`over_time`] for a range argument some of whose series hold
/// histograms: those go through [`crate::native::window`], whose info
/// or warning explains a missing result; float series as before.
fn over_time_with_histograms(
    ev: &mut Eval<'_>,
    name: &str,
    m: Vec<RangeSeries>,
    (start, end, t): (i64, i64, i64),
    keep_name: bool,
    f: &WindowFn,
) -> Value {
    over_windows(ev, m, keep_name, |notes, s| {
        let floats = || {
            float_out(
                (!s.points.is_empty())
                    .then(|| f(&s.points, start, end, t))
                    .flatten(),
            )
        };
        if s.histograms.is_empty() {
            return floats();
        }
        crate::native::window(name, s, start, end, notes).unwrap_or_else(floats)
    })
}

/// A function over anchored or smoothed windows (`smoothed` says which):
/// `rate`, `increase` and `delta` are the exact difference between the
/// window's edge values; the others read the window with its edges
/// settled ([`extend_window`]). Series holding histograms go through
/// [`crate::native::edges::window`].
fn over_edged_windows(
    ev: &mut Eval<'_>,
    name: &str,
    m: Vec<RangeSeries>,
    (start, end, t): (i64, i64, i64),
    (smoothed, keep_name): (bool, bool),
    f: &WindowFn,
) -> Value {
    let rate = matches!(name, "rate" | "increase" | "delta");
    over_windows(ev, m, keep_name && !rate, |notes, s| {
        if !s.histograms.is_empty() {
            return crate::native::edges::window(name, s, (start, end), smoothed, notes);
        }
        if rate {
            let (counter, per_second) = (name != "delta", name == "rate");
            return float_out(exact_rate(
                &s.points, start, end, smoothed, counter, per_second,
            ));
        }
        let w = extend_window(&s.points, start, end, smoothed);
        float_out((!w.is_empty()).then(|| f(&w, start, end, t)).flatten())
    })
}

/// The factor Prometheus' `rate`, `increase` and `delta` scale a window's
/// difference by: from the first to the last sample (`first`, `last`,
/// `n` samples) out to the window's edges, each gap bridged only if it is
/// under 1.1 average intervals (else half an interval); a counter is not
/// taken back past the point where it would have been zero (`zero_share`:
/// its first value over the difference). Per second for `rate`.
pub(crate) fn extrapolation(
    (first, last, n): (i64, i64, usize),
    (start, end): (i64, i64),
    counter: bool,
    zero_share: Option<f64>,
    per_second: bool,
) -> f64 {
    let mut to_start = (first - start) as f64 / 1000.0;
    let mut to_end = (end - last) as f64 / 1000.0;
    let sampled = (last - first) as f64 / 1000.0;
    let avg = sampled / (n - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if counter {
        let to_zero = zero_share.map_or(to_start, |z| sampled * z);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let factor = (sampled + to_start + to_end) / sampled;
    if per_second {
        factor / ((end - start) as f64 / 1000.0)
    } else {
        factor
    }
}

fn extrapolated_rate(s: &[Sample], start: i64, end: i64, counter: bool, rate: bool) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let (first, last) = (s[0], s[s.len() - 1]);
    let mut result = last.v - first.v;
    if counter {
        for w in s.windows(2) {
            if w[1].v < w[0].v {
                result += w[0].v;
            }
        }
    }
    let zero_share = (counter && result > 0.0 && first.v >= 0.0).then(|| first.v / result);
    let factor = extrapolation(
        (first.t, last.t, s.len()),
        (start, end),
        counter,
        zero_share,
        rate,
    );
    Some(result * factor)
}

fn linear_regression(s: &[Sample], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut sy, mut sxy, mut sx2) = (
        0.0,
        KahanSum::default(),
        KahanSum::default(),
        KahanSum::default(),
        KahanSum::default(),
    );
    let first = s[0].v;
    let const_y = s.iter().all(|p| p.v == first);
    for p in s {
        let x = (p.t - intercept_t) as f64 / 1000.0;
        n += 1.0;
        sx.add(x);
        sy.add(p.v);
        sxy.add(x * p.v);
        sx2.add(x * x);
    }
    if const_y {
        return (0.0, first);
    }
    let (sx, sy, sxy, sx2) = (sx.value(), sy.value(), sxy.value(), sx2.value());
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn max_by(s: &[Sample], greater: bool) -> Option<Sample> {
    let mut best: Option<Sample> = None;
    for p in s {
        best = match best {
            None => Some(*p),
            Some(b) if b.v.is_nan() || (greater && p.v >= b.v) || (!greater && p.v <= b.v) => {
                Some(*p)
            }
            keep => keep,
        };
    }
    best
}

fn leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn date_part(name: &str, secs: f64) -> f64 {
    let s = secs.floor() as i64;
    let days = s.div_euclid(86_400);
    let (y, m, d) = crate::calendar::civil(days);
    let in_month = [
        31,
        if leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    match name {
        "year" => y as f64,
        "month" => f64::from(m),
        "day_of_month" => f64::from(d),
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => {
            let before: u32 = in_month[..(m - 1) as usize].iter().sum();
            f64::from(before + d)
        }
        "days_in_month" => f64::from(in_month[(m - 1) as usize]),
        "hour" => (s.rem_euclid(86_400) / 3600) as f64,
        _ => (s.rem_euclid(3600) / 60) as f64,
    }
}

/// The edges of an anchored or smoothed window `(start, end]` over samples
/// read a lookback beyond it: the last sample at or before `start` and the
/// last one (for `smoothed`: the first at or after `end`), with the values
/// at the edges (for `smoothed`, on the line between the samples around an
/// edge; for a counter that reset between them, from 0).
struct WindowEdges {
    first: usize,
    last: usize,
    left: f64,
    right: f64,
}

/// The edge samples of an anchored or smoothed window `(start, end]` over
/// samples (times by `t`, ascending) read a lookback beyond it: the last
/// at or before `start` (else the first) and the last (for `smoothed`:
/// the first at or after `end`, else the last); `None` when no sample
/// lies after `start`.
pub(crate) fn edge_indices<T>(
    s: &[T],
    t: impl Fn(&T) -> i64,
    (start, end): (i64, i64),
    smoothed: bool,
) -> Option<(usize, usize)> {
    let mut last = s.len().checked_sub(1)?;
    let first = s[..last]
        .partition_point(|p| t(p) <= start)
        .saturating_sub(1);
    if smoothed {
        last = s[..last].partition_point(|p| t(p) < end);
    }
    (t(&s[last]) > start).then_some((first, last))
}

fn edges(f: &[Sample], start: i64, end: i64, smoothed: bool, counter: bool) -> Option<WindowEdges> {
    let (first, last) = edge_indices(f, |p| p.t, (start, end), smoothed)?;
    let line = |a: Sample, b: Sample, t: i64| {
        let y1 = if counter && b.v < a.v { 0.0 } else { a.v };
        y1 + (b.v - y1) * (t - a.t) as f64 / (b.t - a.t) as f64
    };
    let left = if smoothed && f[first].t < start {
        line(f[first], f[first + 1], start)
    } else {
        f[first].v
    };
    let right = if smoothed && last > 0 && f[last].t > end {
        line(f[last - 1], f[last], end)
    } else {
        f[last].v
    };
    Some(WindowEdges {
        first,
        last,
        left,
        right,
    })
}

impl WindowEdges {
    /// The samples strictly inside the window.
    fn inner<'s>(&self, f: &'s [Sample], start: i64, end: i64) -> &'s [Sample] {
        let from = self.first + usize::from(f[self.first].t <= start);
        let to = if f[self.last].t >= end {
            self.last
        } else {
            self.last + 1
        };
        &f[from..to.max(from)]
    }
}

/// The points of an anchored or smoothed window `(mint, maxt]`: its edge
/// values at `mint` and `maxt` around the samples strictly inside. Empty
/// when nothing lies after `mint`.
pub(crate) fn extend_window(
    points: &[Sample],
    mint: i64,
    maxt: i64,
    smoothed: bool,
) -> Vec<Sample> {
    let Some(e) = edges(points, mint, maxt, smoothed, false) else {
        return Vec::new();
    };
    let inner = e.inner(points, mint, maxt);
    let mut out = Vec::with_capacity(inner.len() + 2);
    out.push(Sample::new(mint, e.left));
    out.extend_from_slice(inner);
    out.push(Sample::new(maxt, e.right));
    out
}

/// `rate`, `increase` or `delta` over an anchored or smoothed window: the
/// exact difference between its edge values, counter resets inside it
/// added back, no extrapolation.
fn exact_rate(
    f: &[Sample],
    start: i64,
    end: i64,
    smoothed: bool,
    counter: bool,
    per_second: bool,
) -> Option<f64> {
    let e = edges(f, start, end, smoothed, counter)?;
    if smoothed && f[e.first].t > end {
        return None;
    }
    let mut v = e.right - e.left;
    if counter {
        // The edge values already account for resets across the edges.
        let mut prev = e.left;
        for p in e.inner(f, start, end) {
            if p.v < prev {
                v += prev;
            }
            prev = p.v;
        }
        if e.right < prev {
            v += prev;
        }
    }
    Some(if per_second {
        v / ((end - start) as f64 / 1000.0)
    } else {
        v
    })
}

/// `rate` and `increase` of series whose name says they are no counter
/// (Prometheus' info annotation; the answer is computed all the same). One
/// message per distinct name: a range query meets the same series at every
/// step. Both evaluation paths call it.
pub(crate) fn warn_not_counters<'l>(
    warnings: &mut std::collections::BTreeSet<String>,
    func: &str,
    names: impl Iterator<Item = &'l Labels>,
) {
    if func != "rate" && func != "increase" {
        return;
    }
    let mut seen: Vec<&str> = Vec::new();
    for name in names.filter_map(Labels::metric_name) {
        if !seen.contains(&name)
            && !["_total", "_sum", "_count", "_bucket"]
                .iter()
                .any(|x| name.ends_with(x))
        {
            seen.push(name);
            warnings.insert(format!(
                "{} metric might not be a counter, name does not end in \
                 _total/_sum/_count/_bucket: {name:?}",
                crate::INFO_PREFIX
            ));
        }
    }
}

/// Prometheus' quantile over classic `le` buckets (cumulative counts),
/// and whether the counts had to be made monotonic first.
fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> (f64, bool) {
    let v = bucket_quantile_value(q, buckets);
    let mut max = f64::NEG_INFINITY;
    let mut fixed = false;
    for &(_, c) in buckets.iter() {
        fixed |= c < max;
        max = max.max(c);
    }
    (v, fixed)
}

fn bucket_quantile_value(q: f64, buckets: &mut [(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Merge equal bounds and force counts to be monotonic.
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for (ub, c) in buckets.iter().copied() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    let mut max = f64::NEG_INFINITY;
    for b in &mut merged {
        if b.1 > max {
            max = b.1;
        } else {
            b.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let total = merged[merged.len() - 1].1;
    if total == 0.0 || total.is_nan() {
        return f64::NAN;
    }
    let mut rank = q * total;
    let b = merged
        .iter()
        .position(|x| x.1 >= rank)
        .unwrap_or(merged.len() - 1);
    if b == merged.len() - 1 {
        return merged[merged.len() - 2].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let (mut start, end, mut count) = (0.0, merged[b].0, merged[b].1);
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// Fraction of observations between `lo` and `hi` in classic buckets
/// (cumulative counts by upper bound): linear within a bucket; the first
/// bucket starts at 0 when its bound is positive, else at −Inf; a bucket
/// with an infinite bound counts whole or not at all.
fn bucket_fraction(lo: f64, hi: f64, buckets: &mut [(f64, f64)]) -> f64 {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    let total = merged[merged.len() - 1].1;
    if total == 0.0 || lo.is_nan() || hi.is_nan() {
        return f64::NAN;
    }
    if lo >= hi {
        return 0.0;
    }
    let first_lower = if merged[0].0 <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    // Observations below `v`.
    let below = |v: f64| -> f64 {
        let (mut lower, mut before) = (first_lower, 0.0);
        for &(upper, cum) in &merged {
            if v <= lower {
                return before;
            }
            if v < upper {
                return if lower == f64::NEG_INFINITY {
                    cum
                } else if upper == f64::INFINITY {
                    before
                } else {
                    before + (cum - before) * (v - lower) / (upper - lower)
                };
            }
            (lower, before) = (upper, cum);
        }
        total
    };
    (below(hi) - below(lo)) / total
}

pub(crate) fn call(ev: &mut Eval<'_>, name: &str, args: &[Expr], t: i64) -> Result<Value> {
    let mut vals = Vec::with_capacity(args.len());
    for a in args {
        vals.push(match a {
            // The function settles an extended window's edges itself.
            Expr::Matrix(vs, range) if vs.edges != crate::ast::Edges::Plain => {
                Value::Matrix(ev.range_selector_raw(vs, *range, t))
            }
            a => ev.eval(a, t)?,
        });
    }
    let matrix =
        |v: &mut Vec<Value>, i: usize| match std::mem::replace(&mut v[i], Value::Scalar(0.0)) {
            Value::Matrix(m) => m,
            _ => Vec::new(),
        };
    if let Some(at) = matrix_arg(name) {
        let params: Vec<f64> = vals
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != at)
            .map(|(_, v)| scalar(v))
            .collect();
        if name == "quantile_over_time" {
            ev.warn_quantile(params[0]);
        }
        let (f, keep_name) = range_function(name, &params)?;
        let (start, end) = range_bounds(ev, &args[at], t);
        let m = matrix(&mut vals, at);
        warn_not_counters(
            &mut ev.warnings,
            name,
            m.iter().filter(|s| !s.points.is_empty()).map(|s| &s.labels),
        );
        if let Expr::Matrix(vs, _) = &args[at]
            && vs.edges != crate::ast::Edges::Plain
        {
            let edges = vs.edges;
            if !edges.functions().contains(&name) {
                return Err(Error::Eval(format!(
                    "{} modifier can only be used with: {} - not with {name}",
                    edges.keyword(),
                    edges.functions().join(", ")
                )));
            }
            let smoothed = edges == crate::ast::Edges::Smoothed;
            return Ok(over_edged_windows(
                ev,
                name,
                m,
                (start, end, t),
                (smoothed, keep_name),
                &*f,
            ));
        }
        if m.iter().any(|s| !s.histograms.is_empty()) {
            return Ok(over_time_with_histograms(
                ev,
                name,
                m,
                (start, end, t),
                keep_name,
                &*f,
            ));
        }
        return Ok(over_time(&mut ev.names, m, keep_name, |s| {
            f(s, start, end, t)
        }));
    }
    let secs = t as f64 / 1000.0;
    Ok(match name {
        "abs" => map(&mut ev.names, vector(vals.remove(0)), f64::abs),
        "ceil" => map(&mut ev.names, vector(vals.remove(0)), f64::ceil),
        "floor" => map(&mut ev.names, vector(vals.remove(0)), f64::floor),
        "exp" => map(&mut ev.names, vector(vals.remove(0)), f64::exp),
        "sqrt" => map(&mut ev.names, vector(vals.remove(0)), f64::sqrt),
        "ln" => map(&mut ev.names, vector(vals.remove(0)), f64::ln),
        "log2" => map(&mut ev.names, vector(vals.remove(0)), f64::log2),
        "log10" => map(&mut ev.names, vector(vals.remove(0)), f64::log10),
        "sgn" => map(&mut ev.names, vector(vals.remove(0)), |v| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        }),
        "acos" => map(&mut ev.names, vector(vals.remove(0)), f64::acos),
        "acosh" => map(&mut ev.names, vector(vals.remove(0)), f64::acosh),
        "asin" => map(&mut ev.names, vector(vals.remove(0)), f64::asin),
        "asinh" => map(&mut ev.names, vector(vals.remove(0)), f64::asinh),
        "atan" => map(&mut ev.names, vector(vals.remove(0)), f64::atan),
        "atanh" => map(&mut ev.names, vector(vals.remove(0)), f64::atanh),
        "cos" => map(&mut ev.names, vector(vals.remove(0)), f64::cos),
        "cosh" => map(&mut ev.names, vector(vals.remove(0)), f64::cosh),
        "sin" => map(&mut ev.names, vector(vals.remove(0)), f64::sin),
        "sinh" => map(&mut ev.names, vector(vals.remove(0)), f64::sinh),
        "tan" => map(&mut ev.names, vector(vals.remove(0)), f64::tan),
        "tanh" => map(&mut ev.names, vector(vals.remove(0)), f64::tanh),
        "deg" => map(&mut ev.names, vector(vals.remove(0)), f64::to_degrees),
        "rad" => map(&mut ev.names, vector(vals.remove(0)), f64::to_radians),
        "round" => {
            let to = vals.get(1).map_or(1.0, scalar);
            let inv = 1.0 / to;
            map(&mut ev.names, vector(vals.remove(0)), move |v| {
                (v * inv + 0.5).floor() / inv
            })
        }
        "clamp" => {
            let (lo, hi) = (scalar(&vals[1]), scalar(&vals[2]));
            if hi < lo {
                return Ok(Value::Vector(Vec::new()));
            }
            // NaN bounds give NaN, as Go's math.Max and math.Min do.
            map(&mut ev.names, vector(vals.remove(0)), move |v| {
                if lo.is_nan() || hi.is_nan() {
                    f64::NAN
                } else {
                    v.max(lo).min(hi)
                }
            })
        }
        "clamp_min" => {
            let lo = scalar(&vals[1]);
            map(&mut ev.names, vector(vals.remove(0)), move |v| v.max(lo))
        }
        "clamp_max" => {
            let hi = scalar(&vals[1]);
            map(&mut ev.names, vector(vals.remove(0)), move |v| v.min(hi))
        }
        "time" => Value::Scalar(secs),
        "min_of" | "max_of" => {
            let (a, b) = (scalar(&vals[0]), scalar(&vals[1]));
            Value::Scalar(if a.is_nan() || b.is_nan() {
                f64::NAN
            } else if (name == "min_of") == (a < b) {
                a
            } else {
                b
            })
        }
        "pi" => Value::Scalar(std::f64::consts::PI),
        "start" => Value::Scalar(ev.start as f64 / 1000.0),
        "end" => Value::Scalar(ev.end as f64 / 1000.0),
        "range" => Value::Scalar((ev.end - ev.start) as f64 / 1000.0),
        "step" => Value::Scalar(ev.step as f64 / 1000.0),
        "vector" => Value::Vector(vec![Elem::float(Labels::empty(), scalar(&vals[0]))]),
        "scalar" => {
            let floats: Vec<f64> = vector(vals.remove(0))
                .into_iter()
                .filter(|e| e.h.is_none())
                .map(|e| e.v)
                .collect();
            Value::Scalar(if let [v] = floats[..] { v } else { f64::NAN })
        }
        "timestamp" => match args[0].unparen() {
            Expr::Vector(vs) => Value::Vector(
                ev.selector_timestamps(vs, t)
                    .into_iter()
                    .map(|(labels, ts)| {
                        Elem::float(labels, ts as f64 / 1000.0).unnamed(&mut ev.names)
                    })
                    .collect(),
            ),
            _ => map(&mut ev.names, vector(vals.remove(0)), move |_| secs),
        },
        "sort" | "sort_desc" => {
            // Histograms have no order: sorting leaves them out.
            let mut v = vector(vals.remove(0));
            v.retain(|e| e.h.is_none());
            let desc = name == "sort_desc";
            v.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if desc => b.v.total_cmp(&a.v),
                _ => a.v.total_cmp(&b.v),
            });
            Value::Vector(v)
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let names: Vec<String> = vals[1..].iter().map(string).collect();
            let mut v = vector(vals.remove(0));
            v.sort_by(|a, b| {
                let mut o = std::cmp::Ordering::Equal;
                for n in &names {
                    o = o.then_with(|| {
                        natural_cmp(a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""))
                    });
                }
                let o = o.then_with(|| a.labels.cmp(&b.labels));
                if name.ends_with("desc") {
                    o.reverse()
                } else {
                    o
                }
            });
            Value::Vector(v)
        }
        "label_replace" => {
            let (dst, repl, src, re) = (
                string(&vals[1]),
                string(&vals[2]),
                string(&vals[3]),
                string(&vals[4]),
            );
            let re = Regex::new(&format!("^(?s:{re})$")).map_err(|e| {
                Error::Eval(format!(
                    "invalid regular expression in label_replace(): {re}: {e}"
                ))
            })?;
            if !valid_label_name(&dst) {
                return Err(Error::Eval(format!(
                    "invalid destination label name in label_replace(): {dst}"
                )));
            }
            let mut out = Vec::new();
            for e in vector(vals.remove(0)) {
                let sv = e.labels.get(&src).unwrap_or("").to_string();
                match re.captures(&sv) {
                    Some(c) => {
                        let mut res = String::new();
                        c.expand(&repl, &mut res);
                        out.push(Elem {
                            labels: set_label(&e.labels, &dst, &res),
                            // A name written here is kept.
                            drop_name: e.drop_name && dst != METRIC_NAME,
                            ..e
                        });
                    }
                    None => out.push(e),
                }
            }
            check_duplicates(&out)?;
            Value::Vector(out)
        }
        "label_join" => {
            let (dst, sep) = (string(&vals[1]), string(&vals[2]));
            if !valid_label_name(&dst) {
                return Err(Error::Eval(format!(
                    "invalid destination label name in label_join(): {dst}"
                )));
            }
            let srcs: Vec<String> = vals[3..].iter().map(string).collect();
            let out: Vec<Elem> = vector(vals.remove(0))
                .into_iter()
                .map(|e| {
                    let joined = srcs
                        .iter()
                        .map(|s| e.labels.get(s).unwrap_or(""))
                        .collect::<Vec<_>>()
                        .join(&sep);
                    Elem {
                        labels: set_label(&e.labels, &dst, &joined),
                        drop_name: e.drop_name && dst != METRIC_NAME,
                        ..e
                    }
                })
                .collect();
            check_duplicates(&out)?;
            Value::Vector(out)
        }
        "absent" => {
            if !vector(vals.remove(0)).is_empty() {
                return Ok(Value::Vector(Vec::new()));
            }
            Value::Vector(vec![Elem::float(absent_labels(&args[0]), 1.0)])
        }
        "absent_over_time" => {
            if !matrix(&mut vals, 0).is_empty() {
                return Ok(Value::Vector(Vec::new()));
            }
            Value::Vector(vec![Elem::float(absent_labels(&args[0]), 1.0)])
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => {
            if vals.is_empty() {
                return Ok(Value::Vector(vec![Elem::float(
                    Labels::empty(),
                    date_part(name, secs),
                )]));
            }
            let n = name.to_string();
            map(&mut ev.names, vector(vals.remove(0)), move |v| {
                if v.is_finite() {
                    date_part(&n, v)
                } else {
                    f64::NAN
                }
            })
        }
        "histogram_quantile" | "histogram_fraction" => {
            if name == "histogram_quantile" {
                ev.warn_quantile(scalar(&vals[0]));
            }
            let (params, input) = if name == "histogram_quantile" {
                (vec![scalar(&vals[0])], vector(vals.remove(1)))
            } else {
                (
                    vec![scalar(&vals[0]), scalar(&vals[1])],
                    vector(vals.remove(2)),
                )
            };
            Value::Vector(bucket_function(ev, &params, input, args.as_ptr() as usize)?)
        }
        "histogram_quantiles" => {
            // One result per φ, told apart by the label named second.
            let input = vector(vals.remove(0));
            let label = string(&vals[0]);
            if !valid_label_name(&label) {
                return Err(Error::Eval(format!(
                    "invalid label name in histogram_quantiles(): {label:?}"
                )));
            }
            let mut out = Vec::new();
            for v in &vals[1..] {
                let q = scalar(v);
                ev.warn_quantile(q);
                let value = if q.fract() == 0.0 && q.is_finite() {
                    format!("{q:.1}")
                } else {
                    q.to_string()
                };
                for e in bucket_function(ev, &[q], input.clone(), args.as_ptr() as usize)? {
                    out.push(Elem {
                        labels: set_label(&e.labels, &label, &value),
                        ..e
                    });
                }
            }
            check_duplicates(&out)?;
            Value::Vector(out)
        }
        "info" => {
            let Some(Expr::Vector(sel)) = args.get(1) else {
                return Err(Error::Eval("info() needs its label selector".into()));
            };
            let base = vector(vals.remove(0));
            if !base.is_empty() && ev.histogram_at(sel, t) {
                return Err(Error::Eval("info sample should be float".into()));
            }
            let infos = ev.selector_timestamps(sel, t);
            Value::Vector(crate::info::enrich(base, infos, sel)?)
        }
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => Value::Vector(
            vector(vals.remove(0))
                .into_iter()
                .filter_map(|e| {
                    let v = crate::native::read(name, e.h.as_deref()?);
                    Some(Elem::float(e.labels, v).unnamed(&mut ev.names))
                })
                .collect(),
        ),
        other => return Err(Error::Eval(format!("function {other} is not implemented"))),
    })
}

/// `histogram_quantile` (`params = [φ]`) or `histogram_fraction`
/// (`[lower, upper]`) over a vector of native histograms and classic
/// `le` buckets; `node` keys the group-key memo of the call.
fn bucket_function(
    ev: &mut Eval<'_>,
    params: &[f64],
    input: Vec<Elem>,
    node: usize,
) -> Result<Vec<Elem>> {
    let mut order: Vec<Labels> = Vec::new();
    let mut groups: std::collections::HashMap<Labels, Vec<(f64, f64)>> =
        std::collections::HashMap::new();
    // Series that differ only by name collapse into one once the
    // name is dropped: an error, as in Prometheus.
    let mut unnamed: std::collections::HashSet<Labels> = std::collections::HashSet::new();
    // The bucket metric's name per group, for the annotations.
    let mut names: std::collections::HashMap<Labels, String> = std::collections::HashMap::new();
    // (Names removed late are checked when the query's result is complete.)
    if !ev.names.delayed() {
        for e in &input {
            if !unnamed.insert(ev.names.drop_name(&e.labels)) {
                return Err(Error::Eval(
                    "vector cannot contain metrics with the same labelset".into(),
                ));
            }
        }
    }
    let (native, input): (Vec<Elem>, Vec<Elem>) = input.into_iter().partition(|e| e.h.is_some());
    let mut out: Vec<Elem> = Vec::with_capacity(native.len());
    for e in native {
        let Some(h) = e.h.as_deref() else { continue };
        let v = crate::native::quantile_or_fraction(params, h, &e.labels, &mut ev.warnings);
        out.push(Elem::float(e.labels, v).unnamed(&mut ev.names));
    }
    for e in input {
        let Some(le) = e.labels.get("le").and_then(parse_le) else {
            ev.warnings.insert(format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of \"{}\" for metric name \"{}\"",
                e.labels.get("le").unwrap_or(""),
                e.labels.metric_name().unwrap_or("")
            ));
            continue;
        };
        // Memoised per call node: a range query meets each series at every step.
        let keep_name = ev.names.delayed();
        let key = ev
            .group_keys
            .entry((node, e.labels.clone()))
            .or_insert_with(|| {
                Labels::new(
                    e.labels
                        .iter()
                        .filter(|(n, _)| *n != "le" && (keep_name || *n != METRIC_NAME)),
                )
                .unwrap_or_else(|_| Labels::empty())
            })
            .clone();
        if let Some(n) = e.labels.metric_name() {
            names.entry(key.clone()).or_insert_with(|| n.to_string());
        }
        groups
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push((le, e.v));
    }
    // A series that is both (classic buckets and a native histogram)
    // has no answer, as in Prometheus.
    let mixed: std::collections::HashSet<Labels> = order
        .iter()
        .filter(|k| out.iter().any(|e| &e.labels == *k))
        .cloned()
        .collect();
    for k in &mixed {
        ev.warnings.insert(format!(
            "PromQL warning: vector contains a mix of classic and native histograms for metric \
             name {:?}",
            names.get(k).map_or("", String::as_str)
        ));
    }
    out.retain(|e| !mixed.contains(&e.labels));
    out.extend(order.into_iter().filter_map(|k| {
        if mixed.contains(&k) {
            return None;
        }
        let mut b = groups.remove(&k)?;
        let v = if params.len() == 1 {
            let (v, fixed) = bucket_quantile(params[0], &mut b);
            if fixed {
                ev.warnings.insert(format!(
                    "{} input to histogram_quantile needed to be fixed for \
                             monotonicity (see https://prometheus.io/docs/prometheus/\
                             latest/querying/functions/#histogram_quantile) for metric \
                             name {:?}",
                    crate::INFO_PREFIX,
                    names.get(&k).map_or("", String::as_str)
                ));
            }
            v
        } else {
            bucket_fraction(params[0], params[1], &mut b)
        };
        Some(Elem {
            drop_name: true,
            ..Elem::float(k, v)
        })
    }));
    Ok(out)
}

/// Position of the range-vector argument of a function over windows.
pub(crate) fn matrix_arg(name: &str) -> Option<usize> {
    match name {
        "quantile_over_time" => Some(1),
        "present_over_time"
        | "rate"
        | "increase"
        | "delta"
        | "irate"
        | "idelta"
        | "resets"
        | "changes"
        | "deriv"
        | "predict_linear"
        | "avg_over_time"
        | "sum_over_time"
        | "count_over_time"
        | "min_over_time"
        | "max_over_time"
        | "last_over_time"
        | "first_over_time"
        | "ts_of_last_over_time"
        | "ts_of_first_over_time"
        | "ts_of_max_over_time"
        | "ts_of_min_over_time"
        | "stddev_over_time"
        | "stdvar_over_time"
        | "mad_over_time"
        | "double_exponential_smoothing"
        | "holt_winters" => Some(0),
        _ => None,
    }
}

/// A function of one window: (samples, window start, window end,
/// evaluation time) → value, or `None` for no output.
pub(crate) type WindowFn = dyn Fn(&[Sample], i64, i64, i64) -> Option<f64>;

/// A boxed [`WindowFn`].
pub(crate) type RangeFn = Box<WindowFn>;

/// The window function `name` with its scalar `params` (in argument
/// order, the range vector left out), and whether it keeps `__name__`.
/// Both the per-step evaluator and the per-series range path use it.
pub(crate) fn range_function(name: &str, params: &[f64]) -> Result<(RangeFn, bool)> {
    let p = |i: usize| params.get(i).copied().unwrap_or(f64::NAN);
    let values = |s: &[Sample]| s.iter().map(|p| p.v).collect::<Vec<_>>();
    let f: RangeFn = match name {
        "present_over_time" => Box::new(|_, _, _, _| Some(1.0)),
        "rate" => Box::new(|s, a, b, _| extrapolated_rate(s, a, b, true, true)),
        "increase" => Box::new(|s, a, b, _| extrapolated_rate(s, a, b, true, false)),
        "delta" => Box::new(|s, a, b, _| extrapolated_rate(s, a, b, false, false)),
        "irate" | "idelta" => {
            let delta = name == "idelta";
            Box::new(move |s, _, _, _| {
                let [.., prev, last] = s else { return None };
                if delta {
                    return Some(last.v - prev.v);
                }
                let dt = (last.t - prev.t) as f64 / 1000.0;
                (dt != 0.0).then(|| if last.v < prev.v { last.v } else { last.v - prev.v } / dt)
            })
        }
        "resets" => {
            Box::new(|s, _, _, _| Some(s.windows(2).filter(|w| w[1].v < w[0].v).count() as f64))
        }
        "changes" => Box::new(|s, _, _, _| {
            Some(
                s.windows(2)
                    .filter(|w| !(w[1].v == w[0].v || (w[1].v.is_nan() && w[0].v.is_nan())))
                    .count() as f64,
            )
        }),
        "deriv" => Box::new(|s, _, _, _| (s.len() >= 2).then(|| linear_regression(s, s[0].t).0)),
        "predict_linear" => {
            let d = p(0);
            // The intercept is at the evaluation time, even under `@`.
            Box::new(move |s, _, _, t| {
                (s.len() >= 2).then(|| {
                    let (slope, icpt) = linear_regression(s, t);
                    slope * d + icpt
                })
            })
        }
        "avg_over_time" => Box::new(move |s, _, _, _| Some(mean(&values(s)))),
        "sum_over_time" => Box::new(|s, _, _, _| {
            let mut k = KahanSum::default();
            s.iter().for_each(|p| k.add(p.v));
            Some(k.value())
        }),
        "count_over_time" => Box::new(|s, _, _, _| Some(s.len() as f64)),
        "min_over_time" => Box::new(|s, _, _, _| {
            Some(
                s.iter()
                    .fold(f64::NAN, |a, p| if a.is_nan() || p.v < a { p.v } else { a }),
            )
        }),
        "max_over_time" => Box::new(|s, _, _, _| {
            Some(
                s.iter()
                    .fold(f64::NAN, |a, p| if a.is_nan() || p.v > a { p.v } else { a }),
            )
        }),
        "last_over_time" => Box::new(|s, _, _, _| s.last().map(|p| p.v)),
        "first_over_time" => Box::new(|s, _, _, _| s.first().map(|p| p.v)),
        "ts_of_last_over_time" => Box::new(|s, _, _, _| s.last().map(|p| p.t as f64 / 1000.0)),
        "ts_of_first_over_time" => Box::new(|s, _, _, _| s.first().map(|p| p.t as f64 / 1000.0)),
        "ts_of_max_over_time" => {
            Box::new(|s, _, _, _| max_by(s, true).map(|p| p.t as f64 / 1000.0))
        }
        "ts_of_min_over_time" => {
            Box::new(|s, _, _, _| max_by(s, false).map(|p| p.t as f64 / 1000.0))
        }
        "stddev_over_time" => Box::new(move |s, _, _, _| Some(variance(&values(s)).sqrt())),
        "stdvar_over_time" => Box::new(move |s, _, _, _| Some(variance(&values(s)))),
        "mad_over_time" => Box::new(move |s, _, _, _| {
            let mut v = values(s);
            if v.iter().any(|x| x.is_nan()) {
                return Some(f64::NAN);
            }
            let med = quantile(0.5, &mut v);
            let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
            Some(quantile(0.5, &mut dev))
        }),
        "quantile_over_time" => {
            let phi = p(0);
            Box::new(move |s, _, _, _| Some(quantile(phi, &mut values(s))))
        }
        "double_exponential_smoothing" | "holt_winters" => {
            let (sf, tf) = (p(0), p(1));
            if !(sf > 0.0 && sf < 1.0) {
                return Err(Error::Eval(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf}"
                )));
            }
            if !(tf > 0.0 && tf < 1.0) {
                return Err(Error::Eval(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {tf}"
                )));
            }
            Box::new(move |s, _, _, _| {
                if s.len() < 2 {
                    return None;
                }
                let (mut s0, mut s1, mut b) = (0.0, s[0].v, s[1].v - s[0].v);
                for (i, p) in s.iter().enumerate().skip(1) {
                    let x = sf * p.v;
                    if i > 1 {
                        b = tf * (s1 - s0) + (1.0 - tf) * b;
                    }
                    let y = (1.0 - sf) * (s1 + b);
                    s0 = s1;
                    s1 = x + y;
                }
                Some(s1)
            })
        }
        other => return Err(Error::Eval(format!("{other} is not a range function"))),
    };
    Ok((f, matches!(name, "last_over_time" | "first_over_time")))
}

fn parse_le(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        _ => s.trim().parse().ok(),
    }
}

fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
}

pub(crate) fn check_duplicates(v: &[Elem]) -> Result<()> {
    let mut seen = rustc_hash::FxHashSet::default();
    for e in v {
        if !seen.insert(&e.labels) {
            return Err(Error::Eval(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
    }
    Ok(())
}

/// Labels of `absent(...)`: the equality matchers of its selector.
fn absent_labels(arg: &Expr) -> Labels {
    let vs = match arg {
        Expr::Vector(vs) | Expr::Matrix(vs, _) => vs,
        _ => return Labels::empty(),
    };
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let mut dup = std::collections::HashSet::new();
    for m in &vs.matchers {
        if m.op == sextant_storage::MatchOp::Equal
            && m.name != METRIC_NAME
            && dup.insert(m.name.as_str())
        {
            pairs.push((&m.name, &m.value));
        }
    }
    // A label named by more than one matcher is left out.
    let twice: Vec<&str> = vs.matchers.iter().map(|m| m.name.as_str()).collect();
    pairs.retain(|(n, _)| twice.iter().filter(|x| *x == n).count() == 1);
    Labels::new(pairs).unwrap_or_else(|_| Labels::empty())
}

/// Order of label values that compares runs of digits as numbers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    while !x.is_empty() && !y.is_empty() {
        if x[0].is_ascii_digit() && y[0].is_ascii_digit() {
            let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
            let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
            let (dx, dy) = (&x[..nx], &y[..ny]);
            let tx = dx.iter().skip_while(|c| **c == b'0').count();
            let ty = dy.iter().skip_while(|c| **c == b'0').count();
            let o = tx
                .cmp(&ty)
                .then_with(|| dx[nx - tx..].cmp(&dy[ny - ty..]))
                .then(nx.cmp(&ny));
            if o != std::cmp::Ordering::Equal {
                return o;
            }
            x = &x[nx..];
            y = &y[ny..];
        } else {
            if x[0] != y[0] {
                return x[0].cmp(&y[0]);
            }
            x = &x[1..];
            y = &y[1..];
        }
    }
    x.len().cmp(&y.len())
}
