//! Range queries of the form `f(selector[range], scalars…)`, optionally
//! inside a simple aggregation, evaluated series by series with a sliding
//! window across all steps of a chunk (as Prometheus' `rangeEval` does),
//! instead of step by step over all series. Results are identical to the
//! per-step evaluator, which handles every other shape (and the rare case
//! where dropping `__name__` makes two series collide).

use rustc_hash::{FxHashMap, FxHashSet};
use sextant_storage::{Labels, Sample};

use crate::aggregate::{group_key, simple};
use crate::ast::{AggOp, Expr, VectorSelector};
use crate::engine::Eval;
use crate::error::Result;
use crate::functions::{matrix_arg, range_function};
use crate::value::is_stale;

/// Series and their points, in evaluation order.
type SeriesPoints = Vec<(Labels, Vec<Sample>)>;

/// A query shape the per-series path evaluates.
pub(crate) struct Shape<'e> {
    vs: &'e VectorSelector,
    range: i64,
    func: &'e str,
    params: Vec<f64>,
    /// Aggregation around the function: (op, grouping, without, node id).
    agg: Option<(AggOp, &'e [String], bool, usize)>,
}

fn call_shape(e: &Expr) -> Option<Shape<'_>> {
    let Expr::Call { func, args } = e.unparen() else {
        return None;
    };
    let at = matrix_arg(func)?;
    let Expr::Matrix(vs, range) = args.get(at)? else {
        return None;
    };
    // Extended windows read beyond their edges: the per-step path only.
    if vs.edges != crate::ast::Edges::Plain {
        return None;
    }
    let mut params = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i != at {
            match a.unparen() {
                Expr::Number(v) => params.push(*v),
                _ => return None,
            }
        }
    }
    Some(Shape {
        vs,
        range: *range,
        func,
        params,
        agg: None,
    })
}

/// The shape of `e`, if the per-series path can evaluate it.
pub(crate) fn shape(e: &Expr) -> Option<Shape<'_>> {
    if let Expr::Aggregate {
        op,
        expr,
        param: None,
        grouping,
        without,
    } = e.unparen()
    {
        simple(*op, &[])?;
        let mut s = call_shape(expr)?;
        s.agg = Some((*op, grouping, *without, e.unparen() as *const Expr as usize));
        return Some(s);
    }
    call_shape(e)
}

impl Eval<'_> {
    /// Evaluates `shape` at `from, from+step, …, to`, with whether the
    /// series' names are to be dropped; `None` when it must be left to the
    /// per-step evaluator.
    fn range_by_series(
        &mut self,
        shape: &Shape<'_>,
        from: i64,
        to: i64,
        step: i64,
    ) -> Result<Option<(SeriesPoints, bool)>> {
        // Histogram series take the per-step path, which knows them.
        if self.has_histograms(shape.vs) {
            return Ok(None);
        }
        let (f, keep_name) = range_function(shape.func, &shape.params)?;
        if shape.func == "quantile_over_time" {
            self.warn_quantile(shape.params[0]);
        }
        let mut warnings = std::mem::take(&mut self.warnings);
        let series = self.series_data(shape.vs);
        crate::functions::warn_not_counters(
            &mut warnings,
            shape.func,
            series.iter().filter(|(_, s)| !s.is_empty()).map(|(l, _)| l),
        );
        self.warnings = warnings;
        // The caches leave `self` while its series data is borrowed.
        let mut names = std::mem::take(&mut self.names);
        let mut keys = std::mem::take(&mut self.group_keys);
        let done = self.by_series(shape, &*f, keep_name, from, to, step, &mut names, &mut keys);
        self.names = names;
        self.group_keys = keys;
        Ok(done.map(|points| (points, !keep_name)))
    }

    #[allow(clippy::too_many_arguments)] // the caches are passed in only while borrowed out of `self`
    fn by_series(
        &self,
        shape: &Shape<'_>,
        f: &crate::functions::WindowFn,
        keep_name: bool,
        from: i64,
        to: i64,
        step: i64,
        names: &mut crate::value::NameCache,
        keys: &mut crate::aggregate::KeyCache,
    ) -> Option<SeriesPoints> {
        let data = self.series_data(shape.vs);
        let labels: Vec<Labels> = data
            .iter()
            .map(|(l, _)| {
                if keep_name {
                    l.clone()
                } else {
                    names.drop_name(l)
                }
            })
            .collect();
        let mut seen = FxHashSet::default();
        if !labels.iter().all(|l| seen.insert(l)) {
            return None;
        }
        let mut out: SeriesPoints = Vec::new();
        let steps: Vec<i64> = (0..)
            .map(|i| from + i * step)
            .take_while(|t| *t <= to)
            .collect();
        // Per series, per step: the function's value, if any.
        let mut per_group: FxHashMap<Labels, Vec<Vec<f64>>> = FxHashMap::default();
        let mut group_order: Vec<Labels> = Vec::new();
        let mut window = Vec::new();
        for (i, (_, samples)) in data.iter().enumerate() {
            let stale = samples.iter().any(|s| is_stale(s.v));
            let (mut lo, mut hi) = (0usize, 0usize);
            let group = shape.agg.map(|(_, grouping, without, node)| {
                keys.entry((node, labels[i].clone()))
                    .or_insert_with(|| group_key(&labels[i], grouping, without))
                    .clone()
            });
            for (k, &ts) in steps.iter().enumerate() {
                let te = self.effective(shape.vs.at, shape.vs.offset, ts);
                let start = te - shape.range;
                if shape.vs.at.is_some() {
                    lo = samples.partition_point(|s| s.t <= start);
                    hi = samples.partition_point(|s| s.t <= te);
                } else {
                    while hi < samples.len() && samples[hi].t <= te {
                        hi += 1;
                    }
                    while lo < hi && samples[lo].t <= start {
                        lo += 1;
                    }
                }
                let w: &[Sample] = if stale {
                    window.clear();
                    window.extend(samples[lo..hi].iter().filter(|s| !is_stale(s.v)));
                    &window
                } else {
                    &samples[lo..hi]
                };
                if w.is_empty() {
                    continue;
                }
                let Some(v) = f(w, start, te, ts) else {
                    continue;
                };
                match &group {
                    None => match out.last_mut() {
                        Some((l, points)) if *l == labels[i] => points.push(Sample::new(ts, v)),
                        _ => out.push((labels[i].clone(), vec![Sample::new(ts, v)])),
                    },
                    Some(g) => {
                        let slots = per_group.entry(g.clone()).or_insert_with(|| {
                            group_order.push(g.clone());
                            vec![Vec::new(); steps.len()]
                        });
                        slots[k].push(v);
                    }
                }
            }
        }
        if let Some((op, ..)) = shape.agg {
            for g in group_order {
                let Some(slots) = per_group.remove(&g) else {
                    continue;
                };
                let points: Vec<Sample> = slots
                    .iter()
                    .enumerate()
                    .filter(|(_, values)| !values.is_empty())
                    .filter_map(|(k, values)| Some(Sample::new(steps[k], simple(op, values)?)))
                    .collect();
                out.push((g, points));
            }
        }
        Some(out)
    }

    /// Evaluates, for all steps `from..=to` at once, every subtree of
    /// `e` that has a per-series shape (subqueries excluded: they are
    /// evaluated at their own times); `eval` then looks the results up.
    pub(crate) fn precompute(&mut self, e: &Expr, from: i64, to: i64, step: i64) -> Result<()> {
        if let Some(s) = shape(e)
            && let Some((series, drop_name)) = self.range_by_series(&s, from, to, step)?
        {
            let n = ((to - from) / step + 1) as usize;
            let mut per_step: Vec<Vec<crate::value::Elem>> = vec![Vec::new(); n];
            for (labels, points) in series {
                for p in points {
                    per_step[((p.t - from) / step) as usize].push(crate::value::Elem {
                        drop_name,
                        ..crate::value::Elem::float(labels.clone(), p.v)
                    });
                }
            }
            self.precomputed
                .insert(e as *const Expr as usize, (from, per_step));
            return Ok(());
        }
        if matches!(e, Expr::Subquery { .. }) {
            return Ok(());
        }
        for c in e.children() {
            self.precompute(c, from, to, step)?;
        }
        Ok(())
    }
}
