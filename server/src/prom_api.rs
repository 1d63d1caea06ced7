//! The Prometheus HTTP API v1 (query, query_range, series, labels, label
//! values, exemplars, metadata, buildinfo) with Prometheus' parameters,
//! JSON shapes and error wording, so Grafana and `promtool` work unchanged.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State as AxState};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sextant_query::ast::Expr;
use sextant_query::types::ValueType;
use sextant_query::{Engine, EngineOptions, When, parse};
use sextant_storage::{Labels, Matcher, hex};

use super::body::Params;
use super::error::{ApiError, ApiResult};
use super::prom_json::{self, query_data, success};
use super::state::State;

type St = AxState<Arc<State>>;

/// A 200 response with a JSON body.
pub fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET|POST /api/v1/query`
pub async fn query(AxState(st): St, p: Params) -> ApiResult<Response> {
    let expr = promql_query(&p)?;
    let t = match p.get("time") {
        Some(s) => parse_time("time", s)?,
        None => now_ms(),
    };
    promql(&st, &p, expr, When::Instant(t)).await
}

/// Runs a PromQL query and answers Prometheus' JSON.
async fn promql(st: &Arc<State>, p: &Params, expr: Expr, when: When) -> ApiResult<Response> {
    let opts = engine_options(st, p)?;
    let body = st
        .query(move |st| {
            let a = Engine::new(&st.db, opts).run(&expr, when)?;
            Ok(success(&query_data(&a.value, a.at), &a.warnings))
        })
        .await?;
    Ok(json(body))
}

/// `GET|POST /api/v1/query_range`
pub async fn query_range(AxState(st): St, p: Params) -> ApiResult<Response> {
    let start = parse_time("start", required(&p, "start")?)?;
    let end = parse_time("end", required(&p, "end")?)?;
    let step = parse_duration("step", required(&p, "step")?)?;
    sextant_query::check_range(start, end, step)?;
    let expr = promql_query(&p)?;
    let when = When::Range {
        start,
        end,
        step: Some(step),
    };
    promql(&st, &p, expr, when).await
}

/// `GET|POST /api/v1/series`
pub async fn series(AxState(st): St, p: Params) -> ApiResult<Response> {
    let sets = match_sets(&p)?;
    if sets.is_empty() {
        return Err(ApiError::bad("no match[] parameter provided"));
    }
    let (start, end) = time_range(&p)?;
    let limit = limit(&p)?;
    let body = st
        .query(move |st| {
            let mut all = matching_series(st, &sets, start, end)?;
            let warnings = truncate(&mut all, limit);
            let mut out = String::from("[");
            for (i, l) in all.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                prom_json::labels(&mut out, l);
            }
            out.push(']');
            Ok(success(&out, &warnings))
        })
        .await?;
    Ok(json(body))
}

/// `GET|POST /api/v1/labels`
pub async fn labels(AxState(st): St, p: Params) -> ApiResult<Response> {
    let sets = match_sets(&p)?;
    let (start, end) = time_range(&p)?;
    let limit = limit(&p)?;
    let body = st
        .query(move |st| {
            let names = union(&sets, |m| st.db.label_names(m, start, end))?;
            Ok(string_list(names, limit))
        })
        .await?;
    Ok(json(body))
}

/// `GET /api/v1/label/<name>/values`
pub async fn label_values(
    AxState(st): St,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    if name.is_empty() {
        return Err(ApiError::bad(format!("invalid label name: {name:?}")));
    }
    let sets = match_sets(&p)?;
    let (start, end) = time_range(&p)?;
    let limit = limit(&p)?;
    let body = st
        .query(move |st| {
            let values = union(&sets, |m| st.db.label_values(&name, m, start, end))?;
            Ok(string_list(values, limit))
        })
        .await?;
    Ok(json(body))
}

/// `GET|POST /api/v1/query_exemplars`: exemplars of every selector of the
/// query, per series.
pub async fn query_exemplars(AxState(st): St, p: Params) -> ApiResult<Response> {
    let expr = parse_query(&p)?;
    let (start, end) = time_range(&p)?;
    let body = st
        .query(move |st| {
            let mut found = Vec::new();
            for vs in expr.selectors() {
                found.extend(st.db.exemplars(&vs.matchers, start, end)?);
            }
            found.sort_by(|a, b| a.0.cmp(&b.0));
            found.dedup_by(|a, b| a.0 == b.0);
            let mut out = String::from("[");
            for (i, (series, exemplars)) in found.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"seriesLabels\":");
                prom_json::labels(&mut out, series);
                out.push_str(",\"exemplars\":[");
                for (j, e) in exemplars.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    let mut pairs: Vec<(String, String)> = e
                        .labels
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect();
                    if e.trace_id != [0; 16] {
                        pairs.push(("trace_id".into(), hex(&e.trace_id)));
                    }
                    if e.span_id != [0; 8] {
                        pairs.push(("span_id".into(), hex(&e.span_id)));
                    }
                    let l = Labels::new(pairs).map_err(ApiError::from)?;
                    out.push_str("{\"labels\":");
                    prom_json::labels(&mut out, &l);
                    out.push_str(",\"value\":\"");
                    prom_json::number(&mut out, e.value);
                    out.push_str("\",\"timestamp\":");
                    prom_json::timestamp(&mut out, e.t);
                    out.push('}');
                }
                out.push_str("]}");
            }
            out.push(']');
            Ok(success(&out, &[]))
        })
        .await?;
    Ok(json(body))
}

/// `GET /api/v1/metadata`
pub async fn metadata(AxState(st): St, p: Params) -> ApiResult<Response> {
    let limit = limit(&p)?;
    let metric = p.get("metric").filter(|m| !m.is_empty());
    let mut data = serde_json::Map::new();
    for (name, m) in st.metadata.lock().iter() {
        if metric.is_some_and(|want| want != name) {
            continue;
        }
        if limit.is_some_and(|l| data.len() >= l) {
            break;
        }
        data.insert(
            name.clone(),
            serde_json::json!([{"type": m.kind, "help": m.help, "unit": m.unit}]),
        );
    }
    Ok(json(success(
        &serde_json::Value::Object(data).to_string(),
        &[],
    )))
}

/// `GET /api/v1/status/buildinfo`
pub async fn buildinfo() -> Response {
    let data = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
        "application": "sextant",
    });
    json(success(&data.to_string(), &[]))
}

/// A parameter that must be given.
pub fn required<'p>(p: &'p Params, name: &str) -> ApiResult<&'p str> {
    p.get(name)
        .ok_or_else(|| ApiError::bad(format!("invalid parameter \"{name}\": missing")))
}

/// The `query` parameter, parsed.
pub fn parse_query(p: &Params) -> ApiResult<Expr> {
    // `step()` and `range()` stand for this request's step and range.
    let durations = match (p.get("start"), p.get("end"), p.get("step")) {
        (Some(s), Some(e), step) => match (parse_time("start", s), parse_time("end", e)) {
            (Ok(s), Ok(e)) => sextant_query::DurationContext {
                step_ms: step
                    .and_then(|st| parse_duration("step", st).ok())
                    .unwrap_or(0),
                range_ms: e.saturating_sub(s),
            },
            _ => sextant_query::DurationContext::default(),
        },
        _ => sextant_query::DurationContext::default(),
    };
    Ok(sextant_query::parse_with(
        p.get("query").unwrap_or(""),
        durations,
    )?)
}

/// The `query` parameter, which must give a PromQL result: records (logs,
/// spans, traces) have no place in Prometheus' JSON.
fn promql_query(p: &Params) -> ApiResult<Expr> {
    let e = parse_query(p)?;
    let t = sextant_query::value_type(&e);
    if matches!(t, ValueType::Logs | ValueType::Spans | ValueType::Traces) {
        return Err(ApiError::bad(format!(
            "the query returns a {}, which the Prometheus API cannot carry; send it to \
             /api/v1/sextant/query",
            t.name()
        )));
    }
    Ok(e)
}

/// The server's engine options, with a shorter `timeout` if the request
/// asks for one.
pub fn engine_options(st: &State, p: &Params) -> ApiResult<EngineOptions> {
    let asked = match p.get("timeout") {
        Some(t) => Some(Duration::from_millis(
            parse_duration("timeout", t)?.max(1) as u64
        )),
        None => None,
    };
    Ok(options_with_timeout(st, asked))
}

/// The server's engine options; a client may shorten the timeout, never
/// lengthen it.
pub fn options_with_timeout(st: &State, asked: Option<Duration>) -> EngineOptions {
    let mut opts = st.cfg.query.clone();
    if let Some(asked) = asked {
        opts.timeout = Some(opts.timeout.map_or(asked, |max| max.min(asked)));
    }
    opts
}

/// `match[]` selectors, each parsed to its matchers.
fn match_sets(p: &Params) -> ApiResult<Vec<Vec<Matcher>>> {
    p.all("match[]").into_iter().map(selector).collect()
}

/// The matchers of a series selector such as `up{job="api"}`.
pub fn selector(s: &str) -> ApiResult<Vec<Matcher>> {
    match parse(s)? {
        Expr::Vector(vs) => Ok(vs.matchers),
        _ => Err(ApiError::bad(format!(
            "invalid parameter \"match[]\": {s:?} is not a series selector"
        ))),
    }
}

fn time_range(p: &Params) -> ApiResult<(i64, i64)> {
    let start = p.get("start").map(|s| parse_time("start", s)).transpose()?;
    let end = p.get("end").map(|s| parse_time("end", s)).transpose()?;
    let (start, end) = (start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX));
    if end < start {
        return Err(ApiError::bad("end timestamp must not be before start time"));
    }
    Ok((start, end))
}

fn limit(p: &Params) -> ApiResult<Option<usize>> {
    match p.get("limit") {
        None | Some("0") | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            ApiError::bad(format!(
                "invalid parameter \"limit\": {s:?} is not a number"
            ))
        }),
    }
}

/// The label sets matching any of `sets`, sorted, each once.
pub fn matching_series(
    st: &State,
    sets: &[Vec<Matcher>],
    start: i64,
    end: i64,
) -> ApiResult<Vec<Labels>> {
    let mut all: Vec<Labels> = Vec::new();
    for m in sets {
        all.extend(st.db.series(m, start, end)?);
    }
    all.sort();
    all.dedup();
    Ok(all)
}

/// Cuts `v` to `limit` items; the warning Prometheus gives when it did.
pub fn truncate<T>(v: &mut Vec<T>, limit: Option<usize>) -> Vec<String> {
    match limit {
        Some(l) if v.len() > l => {
            v.truncate(l);
            vec!["results truncated due to limit".to_string()]
        }
        _ => Vec::new(),
    }
}

/// Names or values from each `match[]` set (all series without one),
/// merged and sorted.
pub fn union(
    sets: &[Vec<Matcher>],
    f: impl Fn(&[Matcher]) -> sextant_storage::Result<Vec<String>>,
) -> ApiResult<Vec<String>> {
    if sets.is_empty() {
        return Ok(f(&[])?);
    }
    let mut all = std::collections::BTreeSet::new();
    for m in sets {
        all.extend(f(m)?);
    }
    Ok(all.into_iter().collect())
}

fn string_list(mut v: Vec<String>, limit: Option<usize>) -> String {
    let warnings = truncate(&mut v, limit);
    success(
        &serde_json::to_string(&v).unwrap_or_else(|_| "[]".into()),
        &warnings,
    )
}

/// The wall clock, milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A time parameter: Unix seconds (with a fraction) or RFC 3339.
pub fn parse_time(name: &str, s: &str) -> ApiResult<i64> {
    let bad = || {
        ApiError::bad(format!(
            "invalid parameter \"{name}\": cannot parse \"{s}\" to a valid timestamp"
        ))
    };
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() || f.abs() > 9.2e15 {
            return Err(bad());
        }
        let whole = f.trunc();
        return Ok(whole as i64 * 1000 + ((f - whole) * 1000.0).round() as i64);
    }
    let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| bad())?;
    Ok((dt.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// A duration parameter: seconds (with a fraction) or `5m`-style.
pub fn parse_duration(name: &str, s: &str) -> ApiResult<i64> {
    let bad = || {
        ApiError::bad(format!(
            "invalid parameter \"{name}\": cannot parse \"{s}\" to a valid duration"
        ))
    };
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() || f.abs() > 9.2e15 {
            return Err(bad());
        }
        return Ok((f * 1000.0).round() as i64);
    }
    sextant_query::parse_duration(s).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_prometheus_parses_them() {
        assert_eq!(
            parse_time("t", "1435781451.781").unwrap(),
            1_435_781_451_781
        );
        assert_eq!(parse_time("t", "1").unwrap(), 1000);
        assert_eq!(parse_time("t", "-1.5").unwrap(), -1500);
        assert_eq!(
            parse_time("t", "2015-07-01T20:10:51.781Z").unwrap(),
            1_435_781_451_781
        );
        assert_eq!(
            parse_time("t", "2015-07-01T22:10:51+02:00").unwrap(),
            1_435_781_451_000
        );
        for bad in ["NaN", "Inf", "", "yesterday", "1e300"] {
            let e = parse_time("time", bad).unwrap_err().to_string();
            assert!(e.contains("invalid parameter \"time\""), "{e}");
        }
        assert_eq!(parse_duration("step", "15").unwrap(), 15_000);
        assert_eq!(parse_duration("step", "0.5").unwrap(), 500);
        assert_eq!(parse_duration("step", "1m30s").unwrap(), 90_000);
        assert!(parse_duration("step", "NaN").is_err());
    }
}
