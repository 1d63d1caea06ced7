//! A query over a range beside its normal: the web UI draws every chart
//! with the band the same query gave at comparable moments (the market
//! calendar's, as the diagnosis reads them), so "is this normal for a
//! Monday open?" is answered by looking, not by remembering.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::State as AxState;
use axum::response::Response;
use sextant_diagnose::{BASELINE_WINDOWS, LOOKBACK_DAYS};
use sextant_query::value::{RangeSeries, Value};
use sextant_query::{Engine, EngineOptions, When, ast::Expr};
use sextant_storage::Labels;

use super::body::Params;
use super::error::{ApiError, ApiResult};
use super::prom_api::{engine_options, json, parse_duration, parse_query, parse_time, required};
use super::prom_json::{labels, point, string, success};
use super::state::State;

/// Points a chart is drawn with when the request names no step.
const DEFAULT_POINTS: i64 = 120;
/// The shortest step given by default, ms.
const MIN_DEFAULT_STEP_MS: i64 = 15_000;
/// The fewest comparable windows with data that make a band; with fewer,
/// the hours before the range stand in.
const MIN_WINDOWS: usize = 2;
/// Windows read before the range when the calendar's have no data.
const BEFORE_WINDOWS: i64 = 3;

/// Where a band came from.
struct Basis {
    /// `comparable` (the calendar's comparable moments) or `before` (the
    /// stretches just before the range).
    kind: &'static str,
    /// Starts of the windows read, ms.
    starts: Vec<i64>,
}

/// `GET|POST /api/v1/sextant/query_band?query=Q&start=S&end=E[&step=D]`:
/// the range query's series, each with `lower` and `upper`: the lowest
/// and highest value the same query gave at that point of the comparable
/// windows. `baseline` says which windows were read.
pub async fn query_band(AxState(st): AxState<Arc<State>>, p: Params) -> ApiResult<Response> {
    let expr = parse_query(&p)?;
    let opts = engine_options(&st, &p)?;
    let start = parse_time("start", required(&p, "start")?)?;
    let end = parse_time("end", required(&p, "end")?)?;
    let step = match p.get("step") {
        Some(s) => parse_duration("step", s)?,
        None => ((end - start) / DEFAULT_POINTS).max(MIN_DEFAULT_STEP_MS),
    };
    sextant_query::check_range(start, end, step)?;
    let body = st
        .query(move |st| {
            let run = |from: i64| -> ApiResult<Vec<RangeSeries>> {
                series(&st.db, &opts, &expr, from, from + (end - start), step)
            };
            let observed = run(start)?;
            let mut basis = Basis {
                kind: "comparable",
                starts: Vec::new(),
            };
            let mut windows = Vec::new();
            for c in st
                .cfg
                .calendar
                .comparable(start, LOOKBACK_DAYS, BASELINE_WINDOWS)
            {
                let s = run(c)?;
                if !s.is_empty() {
                    basis.starts.push(c);
                    windows.push((start - c, s));
                }
            }
            if windows.len() < MIN_WINDOWS {
                basis = Basis {
                    kind: "before",
                    starts: Vec::new(),
                };
                windows.clear();
                let len = (end - start).max(3_600_000);
                for k in 1..=BEFORE_WINDOWS {
                    let c = start - k * len;
                    let s = run(c)?;
                    if !s.is_empty() {
                        basis.starts.push(c);
                        windows.push((start - c, s));
                    }
                }
            }
            Ok(success(&band_json(&observed, &windows, &basis), &[]))
        })
        .await?;
    Ok(json(body))
}

/// `expr` over `[start, end]` every `step`, as series; a query that does
/// not give series is refused.
fn series(
    db: &sextant_storage::Db,
    opts: &EngineOptions,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
) -> ApiResult<Vec<RangeSeries>> {
    let when = When::Range {
        start,
        end,
        step: Some(step),
    };
    match Engine::new(db, opts.clone()).run(expr, when)?.value {
        Value::Matrix(s) => Ok(s),
        Value::Scalar(_) | Value::Vector(_) => Ok(Vec::new()),
        _ => Err(ApiError::bad(
            "a band needs a query giving series (PromQL, or records turned into series by \
             rate, count_over_time, quantile_over_time, …)",
        )),
    }
}

/// Per observed series, per timestamp: the lowest and highest value the
/// windows gave there, each window's points moved by its shift.
fn band_json(
    observed: &[RangeSeries],
    windows: &[(i64, Vec<RangeSeries>)],
    basis: &Basis,
) -> String {
    let by_labels: Vec<(i64, HashMap<&Labels, &RangeSeries>)> = windows
        .iter()
        .map(|(shift, w)| (*shift, w.iter().map(|s| (&s.labels, s)).collect()))
        .collect();
    let mut out = String::from("{\"resultType\":\"matrix\",\"result\":[");
    for (i, s) in observed.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut at: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
        for (shift, w) in &by_labels {
            for p in w.get(&s.labels).map_or(&[][..], |b| &b.points[..]) {
                if p.v.is_finite() {
                    let e = at.entry(p.t + shift).or_insert((p.v, p.v));
                    e.0 = e.0.min(p.v);
                    e.1 = e.1.max(p.v);
                }
            }
        }
        out.push_str("{\"metric\":");
        labels(&mut out, &s.labels);
        out.push_str(",\"values\":");
        points(&mut out, s.points.iter().map(|p| (p.t, p.v)));
        out.push_str(",\"lower\":");
        points(&mut out, at.iter().map(|(t, (lo, _))| (*t, *lo)));
        out.push_str(",\"upper\":");
        points(&mut out, at.iter().map(|(t, (_, hi))| (*t, *hi)));
        out.push('}');
    }
    out.push_str("],\"baseline\":{\"basis\":");
    string(&mut out, basis.kind);
    out.push_str(",\"starts\":[");
    for (i, s) in basis.starts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&s.to_string());
    }
    out.push_str("]}}");
    out
}

fn points(out: &mut String, pts: impl Iterator<Item = (i64, f64)>) {
    out.push('[');
    for (j, (t, v)) in pts.enumerate() {
        if j > 0 {
            out.push(',');
        }
        point(out, t, v);
    }
    out.push(']');
}
