//! Evaluation over `storage`: a pre-pass finds the time window every
//! selector can reach and fetches its series once; expressions are then
//! evaluated timestamp by timestamp (a range query is one evaluation per
//! step), as Prometheus' engine defines the semantics.

use std::collections::HashMap;

use sextant_storage::{Db, HistogramSample, Labels, Sample};

use crate::aggregate;
use crate::ast::{At, Edges, Expr, VectorSelector};
use crate::binary;
use crate::error::{Error, Result};
use crate::functions;
use crate::records::eval::RecordsState;
use crate::types::ValueType;
use crate::typing::{record_type, value_type};
use crate::value::{Elem, RangeSeries, Value, is_stale};

/// Settings of the evaluator.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (Prometheus: 5m).
    pub lookback_ms: i64,
    /// Step of subqueries written without one (`[10m:]`).
    pub default_subquery_step_ms: i64,
    /// Most samples a query may hold at once.
    pub max_samples: usize,
    /// Most series a query may select (all selectors together).
    pub max_series: usize,
    /// Longest a query may run (Prometheus' default: 2 minutes).
    pub timeout: Option<std::time::Duration>,
    /// Remove `__name__` when the result is complete rather than at the
    /// operation that drops it (Prometheus'
    /// `--enable-feature=promql-delayed-name-removal`; off by default
    /// there too).
    pub delayed_name_removal: bool,
    /// Most whole traces one `trace`/`traces`/`exemplar_traces` returns.
    pub max_traces: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_ms: 300_000,
            default_subquery_step_ms: 60_000,
            max_samples: 50_000_000,
            max_series: 1_000_000,
            timeout: Some(std::time::Duration::from_secs(120)),
            max_traces: 100,
            delayed_name_removal: false,
        }
    }
}

/// Evaluates PromQL expressions against a [`Db`].
pub struct Engine<'a> {
    db: &'a Db,
    opts: EngineOptions,
}

type SeriesData = Vec<(Labels, Vec<Sample>)>;
type HistogramData = Vec<(Labels, Vec<HistogramSample>)>;

/// A range query's or subquery's result being gathered: per series, its
/// float and histogram points, and whether its name is to be dropped.
#[derive(Default)]
pub(crate) struct Points(rustc_hash::FxHashMap<Labels, (Vec<Sample>, Vec<HistogramSample>, bool)>);

impl Points {
    pub(crate) fn push(&mut self, t: i64, e: Elem) {
        let (floats, hists, drop_name) = self.0.entry(e.labels).or_default();
        *drop_name |= e.drop_name;
        match e.h {
            Some(h) => hists.push(HistogramSample { t, h }),
            None => floats.push(Sample::new(t, e.v)),
        }
    }

    /// The series gathered, in label order.
    pub(crate) fn into_matrix(self) -> Vec<RangeSeries> {
        let mut m: Vec<RangeSeries> = self
            .0
            .into_iter()
            .map(|(labels, (points, histograms, drop_name))| RangeSeries {
                labels,
                points,
                histograms,
                drop_name,
            })
            .collect();
        m.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        m
    }
}

pub(crate) struct Eval<'a> {
    pub(crate) db: &'a Db,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) step: i64,
    pub(crate) opts: &'a EngineOptions,
    data: HashMap<usize, SeriesData>,
    /// Histogram samples of the selectors that have any, in label order.
    hists: HashMap<usize, HistogramData>,
    /// When the query must stop (its timeout).
    pub(crate) deadline: Option<std::time::Instant>,
    /// Warnings raised while evaluating (Prometheus' annotations).
    pub(crate) warnings: std::collections::BTreeSet<String>,
    pub(crate) names: crate::value::NameCache,
    pub(crate) group_keys: aggregate::KeyCache,
    /// Results of subtrees evaluated series by series for all steps of the
    /// current chunk: node → (first step, vector per step).
    pub(crate) precomputed: rustc_hash::FxHashMap<usize, (i64, Vec<Vec<Elem>>)>,
    /// Windows and records of record selectors.
    pub(crate) records: RecordsState,
    /// Points produced by subqueries so far, bounded like loaded samples.
    subquery_points: usize,
}

/// What the pre-pass gathers: each selector's window, each selector
/// selector's window, and the window of record selectors written without
/// a range (`None`: the lookback before each evaluation time).
struct Windows<'e> {
    selectors: HashMap<usize, (i64, i64, &'e VectorSelector)>,
    records: HashMap<usize, (i64, i64)>,
    bare: Option<(i64, i64)>,
}

fn signal_node(e: &Expr) -> usize {
    crate::records::eval::node(e)
}

fn key(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

/// When a query is evaluated (see [`Engine::run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// At one time, ms.
    Instant(i64),
    /// Over `[start, end]`, ms; `step` for a PromQL result.
    Range {
        /// First time.
        start: i64,
        /// Last time.
        end: i64,
        /// Resolution of a PromQL result; records need none.
        step: Option<i64>,
    },
}

impl When {
    /// What `step()` and `range()` stand for in a query evaluated so: the
    /// step and `end - start` of a range, 0 for an instant.
    pub fn durations(&self) -> crate::DurationContext {
        match *self {
            When::Instant(_) => crate::DurationContext::default(),
            When::Range { start, end, step } => crate::DurationContext {
                step_ms: step.unwrap_or(0),
                range_ms: end.saturating_sub(start),
            },
        }
    }
}

/// What [`Engine::run`] answers.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The result.
    pub value: Value,
    /// The time an instant result is taken at: the instant, the range's
    /// end for records, its start for a matrix.
    pub at: i64,
    /// Prometheus' annotations raised while evaluating.
    pub warnings: Vec<String>,
}

/// Most points a range query returns per series (Prometheus' limit).
pub const MAX_POINTS: i64 = 11_000;

/// Prometheus' checks of a range query's window, with its messages.
pub fn check_range(start: i64, end: i64, step: i64) -> Result<()> {
    if end < start {
        return Err(Error::OutOfRange(
            "end timestamp must not be before start time".into(),
        ));
    }
    if step <= 0 {
        return Err(Error::OutOfRange(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
                .into(),
        ));
    }
    // In i128: the bounds may be any i64 (gRPC takes them as they come).
    if (i128::from(end) - i128::from(start)) / i128::from(step) > i128::from(MAX_POINTS) {
        return Err(Error::OutOfRange(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the \
             query resolution (?step=XX)"
                .into(),
        ));
    }
    Ok(())
}

impl<'a> Engine<'a> {
    /// An engine over `db`.
    pub fn new(db: &'a Db, opts: EngineOptions) -> Self {
        Engine { db, opts }
    }

    /// Evaluates `expr` at time `t` (ms).
    pub fn instant(&self, expr: &Expr, t: i64) -> Result<Value> {
        Ok(self.instant_annotated(expr, t)?.0)
    }

    /// [`Engine::instant`], with the warnings raised on the way (as
    /// Prometheus' `PromQL warning: ...` annotations).
    pub fn instant_annotated(&self, expr: &Expr, t: i64) -> Result<(Value, Vec<String>)> {
        check_times(expr, self.opts.lookback_ms, &[t])?;
        let mut ev = self.prepare(expr, t, t, t, t, 0, None)?;
        let mut v = ev.eval(expr, t)?;
        if self.opts.delayed_name_removal {
            v = crate::value::remove_flagged_names(v)?;
        }
        Ok((v, ev.warnings.into_iter().collect()))
    }

    /// Evaluates `expr` once at `end`, with every log and span selector
    /// written without a range reading `(start, end]`: how queries whose
    /// result is records (logs, spans, traces) run over a time range.
    pub fn records(&self, expr: &Expr, start: i64, end: i64) -> Result<(Value, Vec<String>)> {
        check_times(expr, self.opts.lookback_ms, &[start, end])?;
        let mut ev = self.prepare(expr, end, end, start, end, 0, Some((start, end)))?;
        let v = ev.eval(expr, end)?;
        Ok((v, ev.warnings.into_iter().collect()))
    }

    /// Runs a query the way every front end runs one (HTTP, gRPC, the CLI,
    /// embedders): at one instant; over a range with a step for a PromQL
    /// result (Prometheus' checks: end not before start, a positive step,
    /// at most 11,000 points a series); over a range without a step for a
    /// result of records (logs, spans, traces), whose selectors then read
    /// the whole range. The warnings come back in every mode.
    pub fn run(&self, expr: &Expr, when: When) -> Result<Answer> {
        let records = matches!(
            value_type(expr),
            ValueType::Logs | ValueType::Spans | ValueType::Traces
        );
        let (value, at, warnings) = match when {
            When::Instant(t) => {
                let (v, w) = self.instant_annotated(expr, t)?;
                (v, t, w)
            }
            When::Range { start, end, .. } if records => {
                if end < start {
                    return Err(Error::OutOfRange("end is before start".into()));
                }
                let (v, w) = self.records(expr, start, end)?;
                (v, end, w)
            }
            When::Range { step: None, .. } => {
                return Err(Error::OutOfRange(
                    "a range query of a PromQL result needs step (e.g. step=60s)".into(),
                ));
            }
            When::Range {
                start,
                end,
                step: Some(step),
            } => {
                check_range(start, end, step)?;
                let (v, w) = self.range_annotated(expr, start, end, step)?;
                (v, start, w)
            }
        };
        Ok(Answer {
            value,
            at,
            warnings,
        })
    }

    /// Evaluates `expr` at every step from `start` to `end` (ms, inclusive);
    /// the result is a matrix sorted by labels.
    pub fn range(&self, expr: &Expr, start: i64, end: i64, step: i64) -> Result<Value> {
        Ok(self.range_annotated(expr, start, end, step)?.0)
    }

    /// [`Engine::range`], with the warnings raised at any step.
    pub fn range_annotated(
        &self,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<(Value, Vec<String>)> {
        if step <= 0 {
            return Err(Error::Eval("zero or negative query resolution step widths are not accepted. Try a positive integer".into()));
        }
        check_times(expr, self.opts.lookback_ms, &[start, end, step])?;
        let t = value_type(expr);
        if t != crate::types::ValueType::Scalar && t != crate::types::ValueType::Vector {
            return Err(Error::Eval(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                t.name()
            )));
        }
        let mut out = Points::default();
        // Evaluate in chunks of at least an hour (or 60 steps), fetching each
        // selector's window per chunk: memory follows the chunk and the
        // result, not the whole range scanned.
        let chunk = (3_600_000 / step).max(60).saturating_mul(step);
        let mut names = crate::value::NameCache::new(self.opts.delayed_name_removal);
        let mut keys = aggregate::KeyCache::default();
        let mut warnings = std::collections::BTreeSet::new();
        let deadline = self.opts.timeout.map(|t| std::time::Instant::now() + t);
        let mut ts = start;
        while ts <= end {
            let chunk_end = ts.saturating_add(chunk - step).min(end);
            let mut ev = self.prepare(expr, ts, chunk_end, start, end, step, None)?;
            ev.deadline = deadline;
            ev.check_deadline()?;
            ev.names = std::mem::take(&mut names);
            ev.group_keys = std::mem::take(&mut keys);
            ev.precompute(expr, ts, chunk_end, step)?;
            if let Some((from, per_step)) = ev.precomputed.remove(&(expr as *const Expr as usize)) {
                // The whole query was evaluated series by series.
                for (k, elems) in per_step.into_iter().enumerate() {
                    let t = from + k as i64 * step;
                    for e in elems {
                        out.push(t, e);
                    }
                }
                ts = chunk_end + step;
            }
            while ts <= chunk_end {
                ev.check_deadline()?;
                match ev.eval(expr, ts)? {
                    Value::Scalar(v) => out.push(ts, Elem::float(Labels::empty(), v)),
                    Value::Vector(elems) => {
                        for e in elems {
                            out.push(ts, e);
                        }
                    }
                    _ => {
                        return Err(Error::Eval(
                            "range query must return a scalar or an instant vector".into(),
                        ));
                    }
                }
                ts += step;
            }
            names = std::mem::take(&mut ev.names);
            keys = std::mem::take(&mut ev.group_keys);
            warnings.append(&mut ev.warnings);
        }
        let mut v = Value::Matrix(out.into_matrix());
        if self.opts.delayed_name_removal {
            v = crate::value::remove_flagged_names(v)?;
        }
        Ok((v, warnings.into_iter().collect()))
    }

    /// Fetches the data of every selector for evaluations at times in
    /// `[lo, hi]` of a query spanning `[start, end]` (record selectors are
    /// read when first evaluated, over the windows found here).
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        &self,
        expr: &Expr,
        lo: i64,
        hi: i64,
        start: i64,
        end: i64,
        step: i64,
        bare: Option<(i64, i64)>,
    ) -> Result<Eval<'_>> {
        let mut windows = Windows {
            selectors: HashMap::new(),
            records: HashMap::new(),
            bare,
        };
        collect(expr, lo, hi, start, end, &self.opts, &mut windows);
        let mut stats_only = std::collections::HashSet::new();
        crate::native::stats_only_selectors(expr, (false, false), &mut stats_only);
        let mut data = HashMap::new();
        let mut hists = HashMap::new();
        let (mut total, mut series_total) = (0usize, 0usize);
        for (k, (lo, hi, vs)) in windows.selectors {
            let (mut series, mut hseries) = (Vec::new(), Vec::new());
            for s in self.db.select(&vs.matchers, lo, hi)? {
                let s = s?;
                // A histogram weighs about as much as its buckets.
                total += s.samples.len()
                    + s.histograms
                        .iter()
                        .map(|h| 1 + h.h.positive.len() + h.h.negative.len())
                        .sum::<usize>();
                if total > self.opts.max_samples {
                    return Err(Error::Limit(format!(
                        "query processing would load too many samples into memory in query \
                         execution (more than {}); narrow its selectors or time range, or raise \
                         max_samples (sextant serve: --query-max-samples)",
                        self.opts.max_samples
                    )));
                }
                series_total += 1;
                if series_total > self.opts.max_series {
                    return Err(Error::Limit(format!(
                        "query selects more than {} series; narrow its selectors or raise \
                         max_series (sextant serve: --query-max-series)",
                        self.opts.max_series
                    )));
                }
                if !s.histograms.is_empty() {
                    let mut hs = s.histograms;
                    crate::native::read_hints(&mut hs, &s.samples, stats_only.contains(&k));
                    hseries.push((s.labels.clone(), hs));
                }
                if !s.samples.is_empty() {
                    series.push((s.labels, s.samples));
                }
            }
            data.insert(k, series);
            if !hseries.is_empty() {
                hists.insert(k, hseries);
            }
        }
        Ok(Eval {
            db: self.db,
            records: RecordsState {
                windows: windows.records,
                ..RecordsState::default()
            },
            start,
            end,
            step,
            opts: &self.opts,
            data,
            hists,
            warnings: Default::default(),
            deadline: self.opts.timeout.map(|t| std::time::Instant::now() + t),
            names: crate::value::NameCache::new(self.opts.delayed_name_removal),
            group_keys: Default::default(),
            precomputed: Default::default(),
            subquery_points: 0,
        })
    }
}

fn at_time(at: Option<At>, qs: i64, qe: i64) -> Option<i64> {
    at.map(|a| match a {
        At::Time(t) => t,
        At::Start => qs,
        At::End => qe,
    })
}

/// Widens the window of every selector reachable from `e` when `e` is
/// evaluated at times in `[lo, hi]`.
fn collect<'e>(
    e: &'e Expr,
    lo: i64,
    hi: i64,
    qs: i64,
    qe: i64,
    opts: &EngineOptions,
    out: &mut Windows<'e>,
) {
    let mut add = |vs: &'e VectorSelector, back: i64, ahead: i64| {
        let (l, h) = match at_time(vs.at, qs, qe) {
            Some(t) => (t, t),
            None => (lo, hi),
        };
        let w = (
            l.saturating_sub(vs.offset).saturating_sub(back),
            h.saturating_sub(vs.offset).saturating_add(ahead),
        );
        let entry = out.selectors.entry(key(vs)).or_insert((w.0, w.1, vs));
        entry.0 = entry.0.min(w.0);
        entry.1 = entry.1.max(w.1);
    };
    match e {
        Expr::Vector(vs) => match vs.edges {
            Edges::Smoothed => add(vs, opts.lookback_ms, opts.lookback_ms),
            _ => add(vs, opts.lookback_ms, 0),
        },
        // Extended windows read a lookback beyond the edges they settle.
        Expr::Matrix(vs, range) => match vs.edges {
            Edges::Plain => add(vs, *range, 0),
            Edges::Anchored => add(vs, range + opts.lookback_ms, 0),
            Edges::Smoothed => add(vs, range + opts.lookback_ms, opts.lookback_ms),
        },
        Expr::Records { range, .. } => {
            let w = match (range, out.bare) {
                (Some(r), _) => (lo.saturating_sub(*r), hi),
                (None, Some(b)) => b,
                (None, None) => (lo.saturating_sub(opts.lookback_ms), hi),
            };
            let entry = out.records.entry(signal_node(e)).or_insert(w);
            entry.0 = entry.0.min(w.0);
            entry.1 = entry.1.max(w.1);
        }
        // Exemplar lookups read exemplars, not samples.
        Expr::Call { func, .. } if func == "exemplar_traces" => {}
        Expr::Subquery {
            expr,
            range,
            offset,
            at,
            ..
        } => {
            let (l, h) = match at_time(*at, qs, qe) {
                Some(t) => (t, t),
                None => (lo, hi),
            };
            collect(expr, l - offset - range, h - offset, qs, qe, opts, out);
        }
        e => {
            for c in e.children() {
                collect(c, lo, hi, qs, qe, opts, out);
            }
        }
    }
}

impl Eval<'_> {
    /// Fails once the query has run past its timeout.
    pub(crate) fn check_deadline(&self) -> Result<()> {
        match self.deadline {
            Some(d) if std::time::Instant::now() > d => Err(Error::Timeout(
                "query timed out in expression evaluation (raise the query timeout or narrow the query)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Prometheus' warning for a quantile parameter outside [0, 1].
    pub(crate) fn warn_quantile(&mut self, phi: f64) {
        if !(0.0..=1.0).contains(&phi) {
            self.warnings.insert(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {phi}"
            ));
        }
    }

    pub(crate) fn effective(&self, at: Option<At>, offset: i64, t: i64) -> i64 {
        at_time(at, self.start, self.end).unwrap_or(t) - offset
    }

    pub(crate) fn eval(&mut self, e: &Expr, t: i64) -> Result<Value> {
        if let Some((from, per_step)) = self.precomputed.get(&(e as *const Expr as usize))
            && t >= *from
            && self.step > 0
            && (t - from) % self.step == 0
            && let Some(v) = per_step.get(((t - from) / self.step) as usize)
        {
            return Ok(Value::Vector(v.clone()));
        }
        Ok(match e {
            Expr::Number(v) => Value::Scalar(*v),
            Expr::Str(s) => Value::Str(s.clone()),
            Expr::Paren(x) => self.eval(x, t)?,
            Expr::Neg(x) => match self.eval(x, t)? {
                Value::Vector(v) => {
                    let v: Vec<Elem> = v
                        .into_iter()
                        .map(|el| {
                            Elem {
                                v: -el.v,
                                h: el.h.map(|h| {
                                    let mut h = (*h).clone();
                                    h.scale(-1.0);
                                    h.hint = sextant_histogram::CounterReset::Gauge;
                                    std::sync::Arc::new(h)
                                }),
                                ..el
                            }
                            .unnamed(&mut self.names)
                        })
                        .collect();
                    functions::check_duplicates(&v)?;
                    Value::Vector(v)
                }
                Value::Scalar(v) => Value::Scalar(-v),
                other => other,
            },
            Expr::Vector(vs) => Value::Vector(self.instant_selector(vs, t)),
            Expr::Matrix(vs, range) => Value::Matrix(self.range_selector(vs, *range, t)?),
            Expr::Subquery {
                expr,
                range,
                step,
                offset,
                at,
            } => {
                let te = self.effective(*at, *offset, t);
                let step = step.unwrap_or(self.opts.default_subquery_step_ms).max(1);
                let lo = te - range;
                let mut ts = lo.div_euclid(step) * step;
                if ts <= lo {
                    ts += step;
                }
                // Refused before it starts, not at the timeout: a subquery
                // like `x[10y:1ms]` would hold a query slot for minutes.
                let steps = usize::try_from((te - ts) / step + 1).unwrap_or(0);
                if steps > self.opts.max_samples {
                    return Err(Error::Limit(format!(
                        "subquery would evaluate {steps} steps, more than the sample limit of {}; \
                         use a larger subquery step or a shorter range",
                        self.opts.max_samples
                    )));
                }
                let mut out = Points::default();
                while ts <= te {
                    self.check_deadline()?;
                    if let Value::Vector(v) = self.eval(expr, ts)? {
                        self.subquery_points += v.len();
                        if self.subquery_points > self.opts.max_samples {
                            return Err(Error::Limit(format!(
                                "subqueries would hold more than {} points in memory; use a \
                                 larger subquery step or a shorter range, or raise max_samples \
                                 (sextant serve: --query-max-samples)",
                                self.opts.max_samples
                            )));
                        }
                        for el in v {
                            out.push(ts, crate::native::resampled(el));
                        }
                    }
                    ts += step;
                }
                Value::Matrix(out.into_matrix())
            }
            Expr::Records { .. } => self.records_value(e, t)?,
            Expr::Binary {
                op,
                lhs,
                rhs,
                matching,
                ..
            } if record_type(lhs).is_some() => self.join(*op, lhs, rhs, matching.as_ref(), t)?,
            Expr::Aggregate {
                op,
                expr: inner,
                param,
                grouping,
                ..
            } if record_type(inner).is_some() => {
                let p = match param {
                    Some(p) => match self.eval(p, t)? {
                        Value::Scalar(k) => Some(k),
                        _ => {
                            return Err(Error::Eval(
                                "aggregation parameter must be a number".into(),
                            ));
                        }
                    },
                    None => None,
                };
                let v = self.eval(inner, t)?;
                crate::records::eval::aggregate(*op, p, grouping, v)?
            }
            Expr::Call { func, args } if crate::records::derive::is_derived(args) => {
                self.derived_call(func, args, t)?
            }
            Expr::Call { func, args }
                if matches!(func.as_str(), "trace" | "traces" | "exemplar_traces") =>
            {
                self.trace_call(func, args, t)?
            }
            Expr::Binary {
                op,
                lhs,
                rhs,
                bool_mode,
                matching,
            } => {
                let l = self.eval(lhs, t)?;
                let r = self.eval(rhs, t)?;
                let v = binary::eval(
                    *op,
                    l,
                    r,
                    *bool_mode,
                    matching.as_ref(),
                    (&mut self.names, &mut self.warnings),
                )?;
                if let Value::Vector(v) = &v {
                    functions::check_duplicates(v)?;
                }
                v
            }
            Expr::Aggregate {
                op,
                expr,
                param,
                grouping,
                without,
            } => {
                let param = match param {
                    Some(p) => Some(self.eval(p, t)?),
                    None => None,
                };
                if *op == crate::ast::AggOp::Quantile
                    && let Some(Value::Scalar(phi)) = &param
                {
                    self.warn_quantile(*phi);
                }
                if *op == crate::ast::AggOp::LimitRatio
                    && let Some(Value::Scalar(r)) = &param
                    && !(-1.0..=1.0).contains(r)
                {
                    // The ratio is clamped to [-1, 1]; say so, as Prometheus does.
                    self.warnings.insert(format!(
                        "PromQL warning: ratio value should be between -1 and 1, got {r}"
                    ));
                }
                let Value::Vector(v) = self.eval(expr, t)? else {
                    return Err(Error::Eval("aggregation over a non-vector".into()));
                };
                Value::Vector(aggregate::eval(
                    *op,
                    v,
                    param,
                    grouping,
                    *without,
                    (e as *const Expr as usize, &mut self.group_keys),
                    &mut self.warnings,
                )?)
            }
            Expr::Call { func, args } => {
                let v = functions::call(self, func, args, t)?;
                if let Value::Vector(v) = &v {
                    functions::check_duplicates(v)?;
                }
                v
            }
        })
    }

    fn instant_selector(&mut self, vs: &VectorSelector, t: i64) -> Vec<Elem> {
        if vs.edges == Edges::Smoothed {
            return self.smoothed_selector(vs, t);
        }
        let floats = self
            .latest_samples(vs, t)
            .map(|(labels, s)| Elem::float(labels.clone(), s.v));
        if !self.has_histograms(vs) {
            return floats.collect();
        }
        let mut out: Vec<Elem> = floats.collect();
        out.extend(
            self.latest_histograms(vs, t)
                .map(|(labels, s)| Elem::histogram(labels.clone(), s.h)),
        );
        out
    }

    /// Whether any series of the selector holds native histograms.
    pub(crate) fn has_histograms(&self, vs: &VectorSelector) -> bool {
        self.hists.contains_key(&key(vs))
    }

    /// The fetched histogram series of a selector.
    fn histogram_data(&self, vs: &VectorSelector) -> &[(Labels, Vec<HistogramSample>)] {
        self.hists
            .get(&key(vs))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The newest float sample (stale or not) of series `labels` at or
    /// before `te`, if it has floats.
    fn latest_float(&self, vs: &VectorSelector, labels: &Labels, te: i64) -> Option<Sample> {
        let data = self.series_data(vs);
        let i = data.binary_search_by(|(l, _)| l.cmp(labels)).ok()?;
        let samples = &data[i].1;
        let j = samples.partition_point(|s| s.t <= te);
        samples.get(j.checked_sub(1)?).copied()
    }

    /// The newest histogram sample of series `labels` at or before `te`.
    fn latest_histogram(
        &self,
        vs: &VectorSelector,
        labels: &Labels,
        te: i64,
    ) -> Option<HistogramSample> {
        let data = self.histogram_data(vs);
        let i = data.binary_search_by(|(l, _)| l.cmp(labels)).ok()?;
        let samples = &data[i].1;
        let j = samples.partition_point(|s| s.t <= te);
        samples.get(j.checked_sub(1)?).cloned()
    }

    /// Per histogram series, its newest sample within the lookback when
    /// it is newer than the series' newest float (a series may switch
    /// between the two) and not a staleness marker.
    fn latest_histograms<'s>(
        &'s self,
        vs: &VectorSelector,
        t: i64,
    ) -> impl Iterator<Item = (&'s Labels, HistogramSample)> {
        let te = self.effective(vs.at, vs.offset, t);
        let lookback = self.opts.lookback_ms;
        self.histogram_data(vs)
            .iter()
            .filter_map(move |(labels, samples)| {
                let i = samples.partition_point(|s| s.t <= te);
                let s = samples.get(i.checked_sub(1)?)?.clone();
                let newer_float = self.latest_float(vs, labels, te).is_some_and(|f| f.t > s.t);
                (s.t > te - lookback && !newer_float && !is_stale(s.h.sum)).then_some((labels, s))
            })
    }

    /// `x smoothed` at `t`, series by series
    /// ([`crate::native::edges::smoothed_at`]).
    fn smoothed_selector(&mut self, vs: &VectorSelector, t: i64) -> Vec<Elem> {
        use crate::native::WindowOut;
        let te = self.effective(vs.at, vs.offset, t);
        let lookback = self.opts.lookback_ms;
        let mut notes = std::mem::take(&mut self.warnings);
        let (floats, hists) = (self.series_data(vs), self.histogram_data(vs));
        // Both lists are in label order; a series may be in either or both.
        let mut labels: Vec<&Labels> = floats.iter().map(|(l, _)| l).collect();
        labels.extend(hists.iter().map(|(l, _)| l));
        labels.sort_unstable();
        labels.dedup();
        let find = |l: &Labels| floats.binary_search_by(|(x, _)| x.cmp(l)).ok();
        let find_h = |l: &Labels| hists.binary_search_by(|(x, _)| x.cmp(l)).ok();
        let mut out = Vec::new();
        for l in labels {
            let f = find(l).map_or(&[][..], |i| &floats[i].1[..]);
            let h = find_h(l).map_or(&[][..], |i| &hists[i].1[..]);
            let name = l.metric_name().unwrap_or("");
            match crate::native::edges::smoothed_at(f, h, te, lookback, (name, &mut notes)) {
                WindowOut::Float(v) => out.push(Elem::float(l.clone(), v)),
                WindowOut::Hist(h) => out.push(Elem::histogram(l.clone(), std::sync::Arc::new(h))),
                WindowOut::Nothing => {}
            }
        }
        self.warnings = notes;
        out
    }

    /// Whether an instant selector finds a native histogram at `t`.
    pub(crate) fn histogram_at(&self, vs: &VectorSelector, t: i64) -> bool {
        self.has_histograms(vs) && self.latest_histograms(vs, t).next().is_some()
    }

    /// (labels, sample timestamp) of an instant selector at `t`.
    pub(crate) fn selector_timestamps(&self, vs: &VectorSelector, t: i64) -> Vec<(Labels, i64)> {
        let mut out: Vec<(Labels, i64)> = self
            .latest_samples(vs, t)
            .map(|(labels, s)| (labels.clone(), s.t))
            .collect();
        if self.has_histograms(vs) {
            out.extend(
                self.latest_histograms(vs, t)
                    .map(|(labels, s)| (labels.clone(), s.t)),
            );
        }
        out
    }

    /// Per series, the newest sample within the lookback window before the
    /// selector's effective time, unless it is a staleness marker.
    fn latest_samples<'s>(
        &'s self,
        vs: &VectorSelector,
        t: i64,
    ) -> impl Iterator<Item = (&'s Labels, Sample)> {
        let te = self.effective(vs.at, vs.offset, t);
        let lookback = self.opts.lookback_ms;
        let mixed = self.has_histograms(vs);
        self.series_data(vs)
            .iter()
            .filter_map(move |(labels, samples)| {
                let i = samples.partition_point(|s| s.t <= te);
                let s = *samples.get(i.checked_sub(1)?)?;
                let newer_histogram = mixed
                    && self
                        .latest_histogram(vs, labels, te)
                        .is_some_and(|h| h.t > s.t);
                (s.t > te - lookback && !is_stale(s.v) && !newer_histogram).then_some((labels, s))
            })
    }

    /// The fetched series of a selector.
    pub(crate) fn series_data(&self, vs: &VectorSelector) -> &[(Labels, Vec<Sample>)] {
        self.data
            .get(&key(vs))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// A range selector's series at `t`; an anchored or smoothed window
    /// with its edge points settled ([`crate::functions::extend_window`]).
    fn range_selector(&self, vs: &VectorSelector, range: i64, t: i64) -> Result<Vec<RangeSeries>> {
        let mut out = self.range_selector_raw(vs, range, t);
        if vs.edges != Edges::Plain && out.iter().any(|s| !s.histograms.is_empty()) {
            return Err(Error::Eval(format!(
                "{} modifier is not supported with histograms",
                vs.edges.keyword()
            )));
        }
        if vs.edges != Edges::Plain {
            let te = self.effective(vs.at, vs.offset, t);
            let smoothed = vs.edges == Edges::Smoothed;
            for s in &mut out {
                s.points = crate::functions::extend_window(&s.points, te - range, te, smoothed);
            }
            out.retain(|s| !s.points.is_empty());
        }
        Ok(out)
    }

    /// A range selector's samples at `t`, an anchored or smoothed window
    /// with the lookback beyond its edges (what `rate` interpolates from).
    pub(crate) fn range_selector_raw(
        &self,
        vs: &VectorSelector,
        range: i64,
        t: i64,
    ) -> Vec<RangeSeries> {
        let te = self.effective(vs.at, vs.offset, t);
        let mut out = Vec::new();
        let (back, ahead) = match vs.edges {
            Edges::Plain => (0, 0),
            Edges::Anchored => (self.opts.lookback_ms, 0),
            Edges::Smoothed => (self.opts.lookback_ms, self.opts.lookback_ms),
        };
        let (from, to) = (te - range - back, te + ahead);
        for (labels, samples) in self.series_data(vs) {
            let lo = samples.partition_point(|s| s.t <= from);
            let hi = samples.partition_point(|s| s.t <= to);
            let mut points = Vec::with_capacity(hi - lo);
            points.extend(samples[lo..hi].iter().filter(|s| !is_stale(s.v)));
            if !points.is_empty() {
                out.push(RangeSeries {
                    labels: labels.clone(),
                    points,
                    histograms: Vec::new(),
                    drop_name: false,
                });
            }
        }
        if !self.has_histograms(vs) {
            return out;
        }
        for (labels, samples) in self.histogram_data(vs) {
            let lo = samples.partition_point(|s| s.t <= from);
            let hi = samples.partition_point(|s| s.t <= to);
            let histograms: Vec<HistogramSample> = samples[lo..hi]
                .iter()
                .filter(|s| !is_stale(s.h.sum))
                .cloned()
                .collect();
            if histograms.is_empty() {
                continue;
            }
            match out.binary_search_by(|s| s.labels.cmp(labels)) {
                Ok(i) => out[i].histograms = histograms,
                Err(i) => out.insert(
                    i,
                    RangeSeries {
                        labels: labels.clone(),
                        points: Vec::new(),
                        histograms,
                        drop_name: false,
                    },
                ),
            }
        }
        out
    }
}

/// Largest evaluation time, `@` time and query reach, ms (2^60, about 36
/// million years). With each bounded so, every sum and difference of
/// times, offsets and ranges formed during evaluation stays inside `i64`.
const MAX_TIME_MS: u64 = 1 << 60;

/// Refuses a query whose times could overflow evaluation: the given
/// instants (and range step), every `@` time, and the query's reach (the
/// largest sum of offsets, ranges, subquery steps and the lookback along
/// one path of the tree) must each be within [`MAX_TIME_MS`].
fn check_times(expr: &Expr, lookback_ms: i64, times: &[i64]) -> Result<()> {
    let mut ats = Vec::new();
    let reach = reach(expr, lookback_ms.unsigned_abs(), &mut ats);
    for t in times.iter().chain(&ats) {
        if t.unsigned_abs() > MAX_TIME_MS {
            return Err(Error::OutOfRange(format!(
                "time {t} ms is outside the supported range of \u{b1}{MAX_TIME_MS} ms \
                 (about 36 million years around 1970)"
            )));
        }
    }
    if reach > MAX_TIME_MS {
        return Err(Error::OutOfRange(format!(
            "the query's offsets and ranges reach back {reach} ms, more than the supported \
             {MAX_TIME_MS} ms; use smaller offsets or ranges"
        )));
    }
    Ok(())
}

/// The largest saturating sum of offsets and ranges along one path from
/// `e` down; `@` times met on the way are pushed to `ats`.
fn reach(e: &Expr, lookback: u64, ats: &mut Vec<i64>) -> u64 {
    let mut note_at = |at: &Option<At>| {
        if let Some(At::Time(t)) = at {
            ats.push(*t);
        }
    };
    let own = match e {
        Expr::Vector(vs) => {
            note_at(&vs.at);
            vs.offset.unsigned_abs().saturating_add(lookback)
        }
        Expr::Matrix(vs, range) => {
            note_at(&vs.at);
            vs.offset
                .unsigned_abs()
                .saturating_add(range.unsigned_abs())
        }
        Expr::Records { range, .. } => range.map_or(lookback, i64::unsigned_abs),
        Expr::Subquery {
            range,
            step,
            offset,
            at,
            ..
        } => {
            note_at(at);
            offset
                .unsigned_abs()
                .saturating_add(range.unsigned_abs())
                .saturating_add(step.unwrap_or(0).unsigned_abs())
        }
        _ => 0,
    };
    let below = e
        .children()
        .into_iter()
        .map(|c| reach(c, lookback, ats))
        .max()
        .unwrap_or(0);
    own.saturating_add(below)
}
