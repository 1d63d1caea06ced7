//! Anchored and smoothed windows (Prometheus' extended range selectors)
//! over series that hold native histograms, and the smoothed instant
//! selector over either kind of sample.
//!
//! An edge's histogram is the sample at or before it (anchored) or the
//! point on the line between the samples around it (smoothed), where a
//! counter that reset between the two is taken to restart from empty.
//! `rate`, `increase` and `delta` are then the exact difference between
//! the edges, with every reset inside added back; nothing is
//! extrapolated.

use sextant_histogram::{CounterReset, Histogram};
use sextant_storage::{HistogramSample, Sample};

use super::{
    Notes, WARNING, WindowOut, metric, mixed_schemas_warning_named, not_counter, not_gauge,
    note_reconciled,
};
use crate::value::{RangeSeries, is_stale};

/// The histogram at `t` between samples `a` and `b` (`a.t <= t <= b.t`);
/// `None`, with the warning, when their bucket kinds cannot be combined.
fn interpolate(
    a: &HistogramSample,
    b: &HistogramSample,
    t: i64,
    counter: bool,
    (name, notes): (&str, &mut Notes),
) -> Option<Histogram> {
    if t == a.t {
        return Some((*a.h).clone());
    }
    if t == b.t {
        return Some((*b.h).clone());
    }
    let fraction = (t - a.t) as f64 / (b.t - a.t) as f64;
    let mut h = (*b.h).clone();
    if counter && b.h.is_reset_after(&a.h) {
        // Restarted from empty between the two; `h` keeps `b`'s reset hint.
        h.scale(fraction);
        return Some(h);
    }
    if !combine(&mut h, &a.h, true, (name, &mut *notes)) {
        return None;
    }
    h.scale(fraction);
    combine(&mut h, &a.h, false, (name, notes)).then_some(h)
}

/// `a += b` (`a -= b` when `subtract`), or the mixed-kinds warning and
/// `false`.
fn combine(
    a: &mut Histogram,
    b: &Histogram,
    subtract: bool,
    (name, notes): (&str, &mut Notes),
) -> bool {
    let (result, what) = if subtract {
        (a.sub(b), "subtraction")
    } else {
        (a.add(b), "addition")
    };
    match result {
        Ok(c) => {
            note_reconciled(notes, c, what);
            true
        }
        Err(_) => {
            mixed_schemas_warning_named(notes, name);
            false
        }
    }
}

/// `name` (`rate`, `increase`, `delta`, `resets` or `changes`) over an
/// anchored or smoothed window `(start, end]` of a series holding
/// histograms, read a lookback beyond its edges.
pub(crate) fn window(
    name: &str,
    s: &RangeSeries,
    (start, end): (i64, i64),
    smoothed: bool,
    notes: &mut Notes,
) -> WindowOut {
    let metric = metric(&s.labels);
    if matches!(name, "resets" | "changes") {
        return anchored_count(name, s, start, notes);
    }
    if !s.points.is_empty() {
        notes.insert(format!(
            "{WARNING} encountered a mix of histograms and floats for metric name {metric:?}"
        ));
        return WindowOut::Nothing;
    }
    exact_rate(name, &s.histograms, (start, end), smoothed, (metric, notes))
        .map_or(WindowOut::Nothing, WindowOut::Hist)
}

/// `resets` or `changes` over an anchored window: from the newest sample
/// of either kind at or before `start` (the anchor) on; older samples
/// are left out.
fn anchored_count(name: &str, s: &RangeSeries, start: i64, notes: &mut Notes) -> WindowOut {
    let f = s.points.partition_point(|p| p.t <= start).checked_sub(1);
    let h = s
        .histograms
        .partition_point(|p| p.t <= start)
        .checked_sub(1);
    let after = |last: Option<usize>, n: usize| last.map_or(0, |i| i + 1) < n;
    if !after(f, s.points.len()) && !after(h, s.histograms.len()) {
        return WindowOut::Nothing;
    }
    // The anchor's kind keeps its index; the other kind starts after it.
    let (from_f, from_h) = match (f, h) {
        (None, None) => (0, 0),
        (Some(f), None) => (f, 0),
        (None, Some(h)) => (0, h),
        (Some(f), Some(h)) if s.points[f].t >= s.histograms[h].t => (f, h + 1),
        (Some(f), Some(h)) => (f + 1, h),
    };
    let trimmed = RangeSeries {
        points: s.points[from_f..].to_vec(),
        histograms: s.histograms[from_h..].to_vec(),
        ..s.clone()
    };
    super::window(name, &trimmed, start, i64::MAX, notes).unwrap_or(WindowOut::Nothing)
}

/// Prometheus' extended rate over histograms (see the module's doc).
fn exact_rate(
    name: &str,
    hs: &[HistogramSample],
    (start, end): (i64, i64),
    smoothed: bool,
    (metric, notes): (&str, &mut Notes),
) -> Option<Histogram> {
    let counter = name != "delta";
    let (first, last) = crate::functions::edge_indices(hs, |h| h.t, (start, end), smoothed)?;
    if smoothed && hs[first].t > end {
        return None;
    }
    let custom = hs[first].h.custom_buckets();
    for h in &hs[first..=last] {
        if h.h.custom_buckets() != custom {
            mixed_schemas_warning_named(notes, metric);
            return None;
        }
        if counter && h.h.hint == CounterReset::Gauge {
            not_counter(notes, metric);
        }
    }
    let left = if smoothed && hs[first].t < start {
        interpolate(&hs[first], &hs[first + 1], start, counter, (metric, notes))?
    } else {
        (*hs[first].h).clone()
    };
    let right = if smoothed && last > 0 && hs[last].t > end {
        interpolate(&hs[last - 1], &hs[last], end, counter, (metric, notes))?
    } else {
        (*hs[last].h).clone()
    };
    if !counter && (left.hint != CounterReset::Gauge || right.hint != CounterReset::Gauge) {
        not_gauge(notes, metric);
    }
    let mut result = right.clone();
    if !combine(&mut result, &left, true, (metric, &mut *notes)) {
        return None;
    }
    if counter {
        let lost = resets_inside(hs, (first, last), (&left, &right), start, smoothed);
        if let Some((first_lost, rest)) = lost.split_first() {
            let mut correction = (*first_lost).clone();
            for h in rest {
                if !combine(&mut correction, h, false, (metric, &mut *notes)) {
                    return None;
                }
            }
            if !combine(&mut result, &correction, false, (metric, &mut *notes)) {
                return None;
            }
        }
    }
    if name == "rate" {
        result.scale(1000.0 / (end - start) as f64);
    }
    result.hint = CounterReset::Gauge;
    result.compact();
    Some(result)
}

/// The histograms the counter lost at each reset between the edges (each
/// the one just before a reset). The edge samples themselves are stood
/// for by `left` and `right`; a reset the left interpolation already
/// crossed is not counted again.
fn resets_inside<'h>(
    hs: &'h [HistogramSample],
    (first, last): (usize, usize),
    (left, right): (&'h Histogram, &Histogram),
    start: i64,
    smoothed: bool,
) -> Vec<&'h Histogram> {
    let mut from = first + 1;
    let mut prev: &Histogram = left;
    if smoothed && hs[first].t < start && hs[first + 1].h.is_reset_after(&hs[first].h) {
        prev = &hs[first + 1].h;
        from += 1;
    }
    let mut lost = Vec::new();
    if from > last {
        return lost;
    }
    for p in &hs[from..last] {
        if p.h.is_reset_after(prev) {
            lost.push(prev);
        }
        prev = &p.h;
    }
    if right.is_reset_after(prev) {
        lost.push(prev);
    }
    lost
}

/// `x smoothed` at `te` for one series (samples read a lookback either
/// side, staleness markers included): the sample at `te`, else the point
/// on the line between the samples around it, else the last one before.
pub(crate) fn smoothed_at(
    floats: &[Sample],
    hists: &[HistogramSample],
    te: i64,
    lookback: i64,
    (metric, notes): (&str, &mut Notes),
) -> WindowOut {
    let near = |t: i64| t > te - lookback && t <= te + lookback;
    let floats: Vec<Sample> = floats
        .iter()
        .copied()
        .filter(|s| near(s.t) && !is_stale(s.v))
        .collect();
    let hists: Vec<&HistogramSample> = hists
        .iter()
        .filter(|s| near(s.t) && !is_stale(s.h.sum))
        .collect();
    if !floats.is_empty() && !hists.is_empty() {
        notes.insert(format!(
            "{WARNING} encountered a mix of histograms and floats for metric name {metric:?}"
        ));
        return WindowOut::Nothing;
    }
    if !hists.is_empty() {
        let i = hists.partition_point(|s| s.t < te);
        return match (hists.get(i), i.checked_sub(1).map(|j| hists[j])) {
            (Some(n), _) if n.t == te => WindowOut::Hist((*n.h).clone()),
            (Some(n), Some(p)) => {
                if n.h.custom_buckets() != p.h.custom_buckets() {
                    mixed_schemas_warning_named(notes, metric);
                    return WindowOut::Nothing;
                }
                let counter = p.h.hint != CounterReset::Gauge || n.h.hint != CounterReset::Gauge;
                interpolate(p, n, te, counter, (metric, notes))
                    .map_or(WindowOut::Nothing, WindowOut::Hist)
            }
            (None, Some(p)) => {
                // The hint spoke of the step from the sample before.
                let mut h = (*p.h).clone();
                h.hint = CounterReset::Unknown;
                WindowOut::Hist(h)
            }
            _ => WindowOut::Nothing,
        };
    }
    let i = floats.partition_point(|s| s.t < te);
    match (floats.get(i), i.checked_sub(1).map(|j| floats[j])) {
        (Some(n), _) if n.t == te => WindowOut::Float(n.v),
        (Some(n), Some(p)) => {
            WindowOut::Float(p.v + (n.v - p.v) * (te - p.t) as f64 / (n.t - p.t) as f64)
        }
        (None, Some(p)) => WindowOut::Float(p.v),
        _ => WindowOut::Nothing,
    }
}
