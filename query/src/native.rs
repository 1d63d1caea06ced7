//! PromQL over native histograms: the `histogram_*` readers, the window
//! functions (`rate` and friends, `*_over_time`), `sum` and `avg`, and
//! the binary operators, with the annotations Prometheus 3 raises when
//! floats and histograms meet or histograms disagree.
//!
//! Float-only functions and aggregations leave histogram samples out (an
//! info annotation says so where Prometheus says it); the float code
//! paths stay as they were for series without histograms.

use std::collections::BTreeSet;
use std::sync::Arc;

use sextant_histogram::{Combined, CounterReset, Histogram, Note};
use sextant_storage::{HistogramSample, Labels, Sample};

use crate::INFO_PREFIX;
use crate::ast::BinOp;
use crate::value::{Elem, RangeSeries};

pub(crate) mod edges;

const WARNING: &str = "PromQL warning:";

/// Annotations raised while evaluating, in Prometheus' words.
pub(crate) type Notes = BTreeSet<String>;

fn metric(labels: &Labels) -> &str {
    labels.metric_name().unwrap_or("")
}

/// Records what combining two histograms had to settle, for `what`
/// ("aggregation", "addition", "subtraction").
fn note_combined(notes: &mut Notes, c: Combined, what: &str) {
    if c.hint_collision {
        notes.insert(format!(
            "{WARNING} conflicting counter resets during histogram {what}"
        ));
    }
    if c.bounds_reconciled {
        notes.insert(format!(
            "{INFO_PREFIX} mismatched custom buckets were reconciled during {what}"
        ));
    }
}

/// [`note_combined`] for rates: their result is a gauge, so hints that
/// disagree are no conflict; only reconciled bounds are noted.
fn note_reconciled(notes: &mut Notes, c: Combined, what: &str) {
    note_combined(
        notes,
        Combined {
            hint_collision: false,
            ..c
        },
        what,
    );
}

fn mixed_schemas_warning(notes: &mut Notes, labels: &Labels) {
    mixed_schemas_warning_named(notes, metric(labels));
}

fn mixed_schemas_warning_named(notes: &mut Notes, name: &str) {
    notes.insert(format!(
        "{WARNING} vector contains a mix of histograms with exponential and custom buckets \
         schemas for metric name {name:?}"
    ));
}

/// Selectors read only for their histograms' count and sum: below
/// `histogram_count`, `histogram_sum` or `histogram_avg`, with no
/// subquery, `histogram_quantile(s)`, `histogram_fraction` or trim on the
/// way up. Prometheus reads those with reset detection on every sample
/// (see [`read_hints`]); `seen` says such a function is above, `blocked`
/// that something needing buckets is.
pub(crate) fn stats_only_selectors(
    e: &crate::ast::Expr,
    (seen, blocked): (bool, bool),
    out: &mut std::collections::HashSet<usize>,
) {
    use crate::ast::Expr;
    let (seen, blocked) = match e {
        Expr::Vector(vs) | Expr::Matrix(vs, _) => {
            if seen && !blocked {
                out.insert(std::ptr::from_ref(vs) as usize);
            }
            return;
        }
        Expr::Call { func, .. } => match func.as_str() {
            "histogram_count" | "histogram_sum" | "histogram_avg" => (true, blocked),
            "histogram_quantile" | "histogram_quantiles" | "histogram_fraction" => (seen, true),
            _ => (seen, blocked),
        },
        Expr::Subquery { .. } => (seen, true),
        Expr::Binary { op, .. } if op.is_trim() => (seen, true),
        _ => (seen, blocked),
    };
    for c in e.children() {
        stats_only_selectors(c, (seen, blocked), out);
    }
}

/// Counter-reset hints as a reader of Prometheus' chunks sees them: a
/// histogram that continues its predecessor without a reset reads as
/// "not a reset"; one that starts a run (the first, one after a float,
/// after a gauge, or after a reset) reads as "unknown". Gauges and
/// explicit resets keep their hint. Read for `stats` only (count and
/// sum), every sample after the first is checked against the previous
/// histogram instead, so a reset reads as "reset". Results of `sum` and
/// friends follow from these hints (and warn when "reset" meets "not a
/// reset"), so they must be the ones Prometheus would see.
pub(crate) fn read_hints(hs: &mut [HistogramSample], floats: &[Sample], stats: bool) {
    let mut prev: Option<(i64, Arc<Histogram>)> = None;
    for s in hs.iter_mut() {
        let stored = s.h.hint;
        let hint = match (&prev, stored) {
            (_, CounterReset::Gauge | CounterReset::Reset) => stored,
            (None, _) => CounterReset::Unknown,
            (Some((pt, ph)), _) => {
                let float_between = floats
                    .get(floats.partition_point(|f| f.t <= *pt))
                    .is_some_and(|f| f.t < s.t);
                let reset = s.h.is_reset_after(ph);
                if stats {
                    if reset {
                        CounterReset::Reset
                    } else {
                        CounterReset::NotReset
                    }
                } else if float_between || ph.hint == CounterReset::Gauge || reset {
                    CounterReset::Unknown
                } else {
                    CounterReset::NotReset
                }
            }
        };
        prev = Some((s.t, Arc::clone(&s.h)));
        if hint != stored {
            let mut h = (*s.h).clone();
            h.hint = hint;
            s.h = Arc::new(h);
        }
    }
}

/// An element as a subquery samples it: a histogram's "reset" or "not a
/// reset" hint spoke of its predecessor in storage, not of the previous
/// step, so it becomes "unknown" (gauges stay gauges).
pub(crate) fn resampled(mut e: Elem) -> Elem {
    if let Some(h) = &e.h
        && matches!(h.hint, CounterReset::Reset | CounterReset::NotReset)
    {
        let mut x = (**h).clone();
        x.hint = CounterReset::Unknown;
        e.h = Some(Arc::new(x));
    }
    e
}

/// A histogram as text, the way Prometheus prints one (what
/// `count_values` puts in its label): count, sum, then every non-empty
/// bucket in value order as an interval with its count.
pub(crate) fn describe(h: &Histogram, number: fn(f64) -> String) -> String {
    let mut out = format!("{{count:{}, sum:{}", number(h.count), number(h.sum));
    for b in h.buckets_ascending() {
        if b.count == 0.0 {
            continue;
        }
        let (open, close) = if b.lower < 0.0 && b.upper > 0.0 {
            ('[', ']')
        } else if b.upper <= 0.0 && !h.custom_buckets() {
            ('[', ')')
        } else {
            ('(', ']')
        };
        out.push_str(&format!(
            ", {open}{},{}{close}:{}",
            number(b.lower),
            number(b.upper),
            number(b.count)
        ));
    }
    out.push('}');
    out
}

/// `histogram_count`, `histogram_sum`, `histogram_avg`,
/// `histogram_stddev`, `histogram_stdvar`: one float per histogram; float
/// samples are left out.
pub(crate) fn read(name: &str, h: &Histogram) -> f64 {
    match name {
        "histogram_count" => h.count,
        "histogram_sum" => h.sum,
        "histogram_avg" => h.sum / h.count,
        "histogram_stddev" => h.variance().sqrt(),
        _ => h.variance(),
    }
}

/// `histogram_quantile` (`params = [φ]`) or `histogram_fraction`
/// (`[lower, upper]`) of one native histogram, with its NaN note.
pub(crate) fn quantile_or_fraction(
    params: &[f64],
    h: &Histogram,
    labels: &Labels,
    notes: &mut Notes,
) -> f64 {
    if let [q] = params {
        let (v, note) = h.quantile(*q);
        match note {
            Some(Note::NanResult) => notes.insert(format!(
                "{INFO_PREFIX} input to histogram_quantile has NaN observations, result is NaN \
                 for metric name {:?}",
                metric(labels)
            )),
            Some(Note::NanSkew) => notes.insert(format!(
                "{INFO_PREFIX} input to histogram_quantile has NaN observations, result is \
                 skewed higher for metric name {:?}",
                metric(labels)
            )),
            None => false,
        };
        return v;
    }
    let (v, note) = h.fraction(params[0], params[1]);
    if note.is_some() {
        notes.insert(format!(
            "{INFO_PREFIX} input to histogram_fraction has NaN observations, which are excluded \
             from all fractions for metric name {:?}",
            metric(labels)
        ));
    }
    v
}

/// One point of a window: a float or a histogram.
#[derive(Clone, Copy)]
enum Point<'a> {
    Float(Sample),
    Hist(&'a HistogramSample),
}

impl Point<'_> {
    fn t(&self) -> i64 {
        match self {
            Point::Float(s) => s.t,
            Point::Hist(h) => h.t,
        }
    }
}

fn merged(s: &RangeSeries) -> Vec<Point<'_>> {
    let mut all: Vec<Point<'_>> = s
        .points
        .iter()
        .map(|p| Point::Float(*p))
        .chain(s.histograms.iter().map(Point::Hist))
        .collect();
    all.sort_by_key(Point::t);
    all
}

/// What a window function gives for a series holding histograms.
pub(crate) enum WindowOut {
    Float(f64),
    Hist(Histogram),
    Nothing,
}

/// Window functions that read histograms; the rest ignore them.
pub(crate) fn reads_histograms(name: &str) -> bool {
    matches!(
        name,
        "rate"
            | "increase"
            | "delta"
            | "irate"
            | "idelta"
            | "resets"
            | "changes"
            | "sum_over_time"
            | "avg_over_time"
            | "count_over_time"
            | "present_over_time"
            | "last_over_time"
            | "first_over_time"
            | "ts_of_last_over_time"
            | "ts_of_first_over_time"
            | "absent_over_time"
    )
}

/// `name` over a window `(start, end]` of a series that holds histogram
/// samples. Functions that do not read histograms get the floats alone
/// (`None`: let the float function run on them), with the info that the
/// histograms were ignored when there were floats too.
pub(crate) fn window(
    name: &str,
    s: &RangeSeries,
    start: i64,
    end: i64,
    notes: &mut Notes,
) -> Option<WindowOut> {
    if !reads_histograms(name) {
        if !s.points.is_empty() {
            notes.insert(format!(
                "{INFO_PREFIX} ignored histograms in a range containing both floats and \
                 histograms for metric name {:?}",
                metric(&s.labels)
            ));
        }
        return None;
    }
    let points = merged(s);
    if matches!(name, "irate" | "idelta") {
        // Only the last two samples count, whatever came before.
        return match points.as_slice() {
            [.., Point::Hist(a), Point::Hist(b)] => {
                Some(instant_rate(name, [*a, *b], metric(&s.labels), notes))
            }
            [.., Point::Float(_), Point::Float(_)] | [_] | [] => None,
            _ => {
                notes.insert(format!(
                    "{WARNING} encountered a mix of histograms and floats for metric name {:?}",
                    metric(&s.labels)
                ));
                Some(WindowOut::Nothing)
            }
        };
    }
    let out = match name {
        "count_over_time" => WindowOut::Float(points.len() as f64),
        "present_over_time" => WindowOut::Float(1.0),
        "last_over_time" | "first_over_time" | "ts_of_last_over_time" | "ts_of_first_over_time" => {
            let p = if name.contains("last") {
                points.last()
            } else {
                points.first()
            };
            match (p, name.starts_with("ts_of")) {
                (Some(p), true) => WindowOut::Float(p.t() as f64 / 1000.0),
                (Some(Point::Float(f)), false) => WindowOut::Float(f.v),
                (Some(Point::Hist(h)), false) => WindowOut::Hist((*h.h).clone()),
                (None, _) => WindowOut::Nothing,
            }
        }
        "resets" | "changes" => {
            let mut n = 0;
            for w in points.windows(2) {
                let differs = match (w[0], w[1]) {
                    (Point::Float(a), Point::Float(b)) => {
                        if name == "resets" {
                            b.v < a.v
                        } else {
                            !(a.v == b.v || (a.v.is_nan() && b.v.is_nan()))
                        }
                    }
                    (Point::Hist(a), Point::Hist(b)) => {
                        if name == "resets" {
                            b.h.is_reset_after(&a.h)
                        } else {
                            !a.h.same_as(&b.h)
                        }
                    }
                    _ => true,
                };
                n += usize::from(differs);
            }
            WindowOut::Float(n as f64)
        }
        _ => {
            if !s.points.is_empty() {
                notes.insert(format!(
                    "{WARNING} encountered a mix of histograms and floats for metric name {:?}",
                    metric(&s.labels)
                ));
                return Some(WindowOut::Nothing);
            }
            let hs = &s.histograms;
            let custom = hs[0].h.custom_buckets();
            // Rates settle mixed bucket kinds themselves (a reset may drop
            // the first sample).
            let rate = matches!(name, "rate" | "increase" | "delta");
            if !rate && hs.iter().any(|h| h.h.custom_buckets() != custom) {
                mixed_schemas_warning(notes, &s.labels);
                return Some(WindowOut::Nothing);
            }
            match name {
                "sum_over_time" | "avg_over_time" => {
                    match sum(hs.iter().map(|h| &*h.h), notes, "aggregation") {
                        Some(total) if name == "avg_over_time" => {
                            let all: Vec<&Histogram> = hs.iter().map(|h| &*h.h).collect();
                            WindowOut::Hist(mean(&all, total))
                        }
                        Some(total) => WindowOut::Hist(total),
                        None => WindowOut::Nothing,
                    }
                }
                _ => extrapolated(name, hs, (start, end), metric(&s.labels), notes),
            }
        }
    };
    Some(out)
}

/// The mean of `hs` given their sum: the sum divided by their number,
/// or, when the sum overflowed where the histograms did not, the sum of
/// each divided first (as Prometheus falls back to an incremental mean).
fn mean(hs: &[&Histogram], mut total: Histogram) -> Histogram {
    let n = hs.len() as f64;
    let overflowed = |h: &Histogram| {
        h.count.is_infinite()
            || h.sum.is_infinite()
            || h.zero_count.is_infinite()
            || h.positive
                .iter()
                .chain(&h.negative)
                .any(|b| b.1.is_infinite())
    };
    if overflowed(&total) && !hs.iter().any(|h| overflowed(h)) {
        let scaled: Vec<Histogram> = hs
            .iter()
            .map(|h| {
                let mut x = (*h).clone();
                x.scale(1.0 / n);
                x
            })
            .collect();
        let refs: Vec<&Histogram> = scaled.iter().collect();
        if let Ok((mut m, _)) = Histogram::sum_of(&refs) {
            m.compact();
            return m;
        }
    }
    total.scale(1.0 / n);
    total
}

/// Sum of histograms (compensated); `None` when they cannot be added.
fn sum<'h>(
    hs: impl Iterator<Item = &'h Histogram>,
    notes: &mut Notes,
    what: &str,
) -> Option<Histogram> {
    let hs: Vec<&Histogram> = hs.collect();
    let (mut total, mut c) = Histogram::sum_of(&hs).ok()?;
    // A collision is a reset anywhere beside a non-reset anywhere, not
    // only between neighbours of the fold (Prometheus' rule).
    let seen = |hint| hs.iter().any(|h| h.hint == hint);
    c.hint_collision = seen(CounterReset::Reset) && seen(CounterReset::NotReset);
    note_combined(notes, c, what);
    total.compact();
    Some(total)
}

fn not_gauge(notes: &mut Notes, name: &str) {
    notes.insert(format!(
        "{WARNING} this native histogram metric is not a gauge: {name:?}"
    ));
}

fn not_counter(notes: &mut Notes, name: &str) {
    notes.insert(format!(
        "{WARNING} this native histogram metric is not a counter: {name:?}"
    ));
}

/// `irate` / `idelta` over histograms: the last two samples.
fn instant_rate(
    name: &str,
    [prev, last]: [&HistogramSample; 2],
    metric: &str,
    notes: &mut Notes,
) -> WindowOut {
    let counter = name == "irate";
    let gauges = [prev, last]
        .iter()
        .filter(|x| x.h.hint == CounterReset::Gauge)
        .count();
    if counter && gauges > 0 {
        not_counter(notes, metric);
    }
    if !counter && gauges < 2 {
        not_gauge(notes, metric);
    }
    if !counter && prev.h.custom_buckets() != last.h.custom_buckets() {
        mixed_schemas_warning_named(notes, metric);
        return WindowOut::Nothing;
    }
    let mut h = (*last.h).clone();
    if !(counter && last.h.is_reset_after(&prev.h)) {
        match h.sub(&prev.h) {
            Ok(c) => note_reconciled(notes, c, "subtraction"),
            Err(_) => return WindowOut::Nothing,
        }
    }
    if counter {
        let dt = (last.t - prev.t) as f64 / 1000.0;
        if dt == 0.0 {
            return WindowOut::Nothing;
        }
        h.scale(1.0 / dt);
    }
    h.compact();
    h.hint = CounterReset::Gauge;
    WindowOut::Hist(h)
}

/// `rate`, `increase` and `delta` over histograms: the difference between
/// the last and first sample (resets added back for counters),
/// extrapolated to the window's edges as for floats, using the count.
fn extrapolated(
    name: &str,
    hs: &[HistogramSample],
    (start, end): (i64, i64),
    metric: &str,
    notes: &mut Notes,
) -> WindowOut {
    if hs.len() < 2 {
        return WindowOut::Nothing;
    }
    let counter = name != "delta";
    let (first, last) = (&hs[0], &hs[hs.len() - 1]);
    if counter && hs.iter().any(|h| h.h.hint == CounterReset::Gauge) {
        not_counter(notes, metric);
    }
    if !counter && (first.h.hint != CounterReset::Gauge || last.h.hint != CounterReset::Gauge) {
        not_gauge(notes, metric);
    }
    // A reset right after the first sample makes it an empty histogram of
    // the second's layout: its buckets (maybe of another kind) no longer
    // matter, only its count for the extrapolation below.
    let emptied = (counter && hs[1].h.is_reset_after(&first.h)).then(|| Histogram {
        schema: hs[1].h.schema,
        custom_values: hs[1].h.custom_values.clone(),
        ..Histogram::default()
    });
    let mut prev: &Histogram = emptied.as_ref().unwrap_or(&first.h);
    let kind = prev.custom_buckets();
    if hs[1..].iter().any(|h| h.h.custom_buckets() != kind) {
        mixed_schemas_warning_named(notes, metric);
        return WindowOut::Nothing;
    }
    let mut h = (*last.h).clone();
    match h.sub(prev) {
        Ok(c) => note_reconciled(notes, c, "subtraction"),
        Err(_) => return WindowOut::Nothing,
    }
    if counter {
        for cur in &hs[1..] {
            if cur.h.is_reset_after(prev) {
                match h.add(prev) {
                    Ok(c) => note_reconciled(notes, c, "addition"),
                    Err(_) => return WindowOut::Nothing,
                }
            }
            prev = &cur.h;
        }
    }
    let zero_share =
        (counter && h.count > 0.0 && first.h.count >= 0.0).then(|| first.h.count / h.count);
    let factor = crate::functions::extrapolation(
        (first.t, last.t, hs.len()),
        (start, end),
        counter,
        zero_share,
        name == "rate",
    );
    h.scale(factor);
    h.compact();
    h.hint = CounterReset::Gauge;
    WindowOut::Hist(h)
}

/// `sum` or `avg` of one group holding histograms: `None` (with the
/// warning) when the group mixes floats and histograms or bucket kinds.
pub(crate) fn aggregate_group(
    avg: bool,
    elems: &[&Elem],
    labels: &Labels,
    notes: &mut Notes,
) -> Option<Histogram> {
    if elems.iter().any(|e| e.h.is_none()) {
        notes.insert(format!(
            "{WARNING} encountered a mix of histograms and floats for aggregation"
        ));
        return None;
    }
    let hs: Vec<&Histogram> = elems.iter().filter_map(|e| e.h.as_deref()).collect();
    let custom = hs[0].custom_buckets();
    if hs.iter().any(|h| h.custom_buckets() != custom) {
        mixed_schemas_warning(notes, labels);
        return None;
    }
    let mut total = sum(hs.iter().copied(), notes, "aggregation")?;
    if avg {
        total = mean(&hs, total);
    }
    Some(total)
}

/// The info for an aggregation that leaves histograms out.
pub(crate) fn ignored_in_aggregation(notes: &mut Notes, op: &str) {
    notes.insert(format!(
        "{INFO_PREFIX} ignored histogram in {op} aggregation"
    ));
}

/// What a binary operator gives for two operands at least one of which
/// is a histogram (or for a trim): the result and whether a comparison
/// holds, or `None` when the pair has no result (an info says why).
pub(crate) fn binary(
    op: BinOp,
    l: (f64, Option<&Arc<Histogram>>),
    r: (f64, Option<&Arc<Histogram>>),
    notes: &mut Notes,
) -> Option<(Elem, bool)> {
    let kind = |h: Option<&Arc<Histogram>>| if h.is_some() { "histogram" } else { "float" };
    let incompatible = |notes: &mut Notes| {
        notes.insert(format!(
            "{INFO_PREFIX} incompatible sample types encountered for binary operator {:?}: {} {} {}",
            op.text(),
            kind(l.1),
            op.text(),
            kind(r.1)
        ));
    };
    let labels = Labels::empty();
    let h = match (op, l.1, r.1) {
        (BinOp::Add | BinOp::Sub, Some(a), Some(b)) => {
            let mut x = (**a).clone();
            let c = if op == BinOp::Add { x.add(b) } else { x.sub(b) };
            match c {
                Ok(c) => note_combined(
                    notes,
                    c,
                    if op == BinOp::Add {
                        "addition"
                    } else {
                        "subtraction"
                    },
                ),
                Err(_) => {
                    notes.insert(format!(
                        "{WARNING} incompatible bucket layout encountered for binary operator {}",
                        op.text()
                    ));
                    return None;
                }
            }
            if op == BinOp::Sub {
                // A difference of counters is no counter.
                x.hint = CounterReset::Gauge;
            }
            x.compact();
            x
        }
        (BinOp::Mul, Some(a), None) | (BinOp::Mul, None, Some(a)) => {
            let f = if l.1.is_some() { r.0 } else { l.0 };
            let mut x = (**a).clone();
            x.scale(f);
            if f < 0.0 {
                x.hint = CounterReset::Gauge;
            }
            x
        }
        (BinOp::Div, Some(a), None) => {
            let mut x = (**a).clone();
            x.scale(1.0 / r.0);
            if r.0 == 0.0 {
                // Division by zero leaves no bucket (Prometheus' rule).
                x.count = a.count / r.0;
                x.sum = a.sum / r.0;
                x.zero_count = a.zero_count / r.0;
                x.positive.clear();
                x.negative.clear();
            } else if r.0 < 0.0 {
                x.hint = CounterReset::Gauge;
            }
            x
        }
        (BinOp::TrimUpper | BinOp::TrimLower, Some(a), None) => {
            let mut x = (**a).clone();
            x.trim(r.0, op == BinOp::TrimUpper);
            x
        }
        (BinOp::Eql | BinOp::Neq, Some(a), Some(b)) => {
            let same = a.same_as(b);
            let keep = (op == BinOp::Eql) == same;
            return Some((Elem::histogram(labels, Arc::clone(a)), keep));
        }
        _ => {
            incompatible(notes);
            return None;
        }
    };
    Some((Elem::histogram(labels, Arc::new(h)), true))
}
