//! Reading logs and traces over HTTP, in OTLP's JSON field names: the
//! unified query endpoint (`/api/v1/sextant/query`: PromQL plus log and
//! span selectors, records → series, joins and traces), a trace by id and
//! a log search (selector plus text query).

use std::sync::Arc;

use axum::extract::{Path, State as AxState};
use axum::response::Response;
use serde_json::{Value as Json, json};
use sextant_query::ast::Expr;
use sextant_query::value::Value;
use sextant_query::{Answer, Engine, When, parse};
use sextant_storage::{
    AnyValue, Attributes, LogRecord, LogSearch, Span, TextQuery, Trace, TraceId, hex,
    parse_trace_id,
};

use super::body::Params;
use super::error::{ApiError, ApiResult, Kind};
use super::prom_api::{engine_options, json, now_ms, parse_duration, parse_query, parse_time};
use super::prom_json::{query_data, success};
use super::state::State;

/// Most log rows one search returns.
const MAX_LOG_LIMIT: usize = 10_000;

/// The `limit` parameter (1..=[`MAX_LOG_LIMIT`]), or `default`.
fn limit_param(p: &Params, default: usize) -> ApiResult<usize> {
    match p.get("limit") {
        None => Ok(default),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LOG_LIMIT).contains(l))
            .ok_or_else(|| ApiError::bad(format!("limit {l:?}: expected 1..={MAX_LOG_LIMIT}"))),
    }
}

/// Records one unified query returns unless `limit` says otherwise.
const DEFAULT_RECORD_LIMIT: usize = 100;

/// `GET|POST /api/v1/sextant/query?query=Q[&time=T | &start=S&end=E[&step=D]][&limit=N]`:
/// any expression of the language. A PromQL result (scalar, vector,
/// matrix) has Prometheus' JSON shape; records come as
/// `{"resultType":"logs"|"spans"|"traces","result":[...]}`, newest first,
/// at most `limit` (a warning says when more matched). Records over
/// `start`..`end` come from selectors written without a range; at `time`
/// alone, from the 5-minute lookback (or the selector's `[range]`).
pub async fn query(AxState(st): AxState<Arc<State>>, p: Params) -> ApiResult<Response> {
    let expr = parse_query(&p)?;
    let opts = engine_options(&st, &p)?;
    let limit = limit_param(&p, DEFAULT_RECORD_LIMIT)?;
    let when = when(p.get("time"), p.get("start"), p.get("end"), p.get("step"))?;
    let body = st
        .query(move |st| {
            let answer = Engine::new(&st.db, opts).run(&expr, when)?;
            Ok(answer_json(answer, limit))
        })
        .await?;
    Ok(json(body))
}

/// When a query of the unified language runs, from its `time`, `start`,
/// `end` and `step` parameters (Prometheus' formats): at `time` (default
/// now), or over `start`..`end` (both or neither) with an optional step.
/// `sextant query` reads its flags through this too.
pub fn when(
    time: Option<&str>,
    start: Option<&str>,
    end: Option<&str>,
    step: Option<&str>,
) -> ApiResult<When> {
    Ok(match (start, end) {
        (Some(s), Some(e)) => When::Range {
            start: parse_time("start", s)?,
            end: parse_time("end", e)?,
            step: step.map(|s| parse_duration("step", s)).transpose()?,
        },
        (None, None) => When::Instant(match time {
            Some(t) => parse_time("time", t)?,
            None => now_ms(),
        }),
        _ => return Err(ApiError::bad("give both start and end, or neither")),
    })
}

/// The response body of `/api/v1/sextant/query` for `answer`: Prometheus'
/// JSON for PromQL results, `logs` / `spans` / `traces` for records (at
/// most `limit`). `sextant query` prints the same for a data directory.
pub fn answer_json(answer: Answer, limit: usize) -> String {
    let Answer {
        value: v,
        at,
        mut warnings,
    } = answer;
    let data = match &v {
        Value::Logs(_) | Value::Spans(_) | Value::Traces(_) => {
            records_data(&v, limit, &mut warnings)
        }
        _ => query_data(&v, at),
    };
    success(&data, &warnings)
}

/// `{"resultType":..., "result":[...]}` of records, at most `limit`.
fn records_data(v: &Value, limit: usize, warnings: &mut Vec<String>) -> String {
    let (kind, total, rows): (&str, usize, Vec<Json>) = match v {
        Value::Logs(rows) => (
            "logs",
            rows.len(),
            rows.iter().take(limit).map(log_json).collect(),
        ),
        Value::Spans(spans) => (
            "spans",
            spans.len(),
            spans.iter().take(limit).map(span_json).collect(),
        ),
        Value::Traces(traces) => (
            "traces",
            traces.len(),
            traces.iter().take(limit).map(trace_json).collect(),
        ),
        _ => ("", 0, Vec::new()),
    };
    if total > limit {
        warnings.push(format!(
            "{total} {kind} matched; the first {limit} are returned (raise limit, up to \
             {MAX_LOG_LIMIT})"
        ));
    }
    json!({"resultType": kind, "result": rows}).to_string()
}

/// A trace: its id and spans by start time, each with its parent's index.
fn trace_json(t: &Trace) -> Json {
    let spans: Vec<Json> = t
        .spans
        .iter()
        .zip(&t.parents)
        .map(|(s, parent)| {
            let mut j = span_json(s);
            j["parentIndex"] = json!(parent);
            j
        })
        .collect();
    json!({"traceId": t.id().map(|id| hex(&id)).unwrap_or_default(), "spans": spans})
}

/// Log lines returned with a trace.
const MAX_TRACE_LOGS: usize = 1_000;

/// `GET /api/v1/sextant/traces/{trace_id}`: every span of the trace, by
/// start time, each with the index of its parent, and the lines the
/// trace logged (`logs`, oldest first, at most [`MAX_TRACE_LOGS`]).
pub async fn trace(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let tid = parse_trace_id(&id).map_err(|e| ApiError::bad(e.to_string()))?;
    let body = st
        .query(move |st| {
            let t = find_trace(st, &tid)?;
            let mut j = trace_json(&t);
            let mut logs = st.db.trace_logs(&tid)?;
            let more = logs.len() > MAX_TRACE_LOGS;
            logs.truncate(MAX_TRACE_LOGS);
            j["logs"] = logs.iter().map(log_json).collect();
            let warnings = if more {
                vec![format!(
                    "the trace logged more than {MAX_TRACE_LOGS} lines; the oldest are returned"
                )]
            } else {
                Vec::new()
            };
            Ok(success(&j.to_string(), &warnings))
        })
        .await?;
    Ok(json(body))
}

/// A whole trace, or NOT_FOUND.
pub fn find_trace(st: &State, id: &TraceId) -> ApiResult<Trace> {
    st.db.trace(id)?.ok_or_else(|| {
        ApiError::new(
            Kind::NotFound,
            format!("trace {} not found: no span of it is stored", hex(id)),
        )
    })
}

/// `GET|POST /api/v1/sextant/logs?match[]={service="x"}&q=TEXT&start&end&limit`:
/// newest first.
pub async fn logs(AxState(st): AxState<Arc<State>>, p: Params) -> ApiResult<Response> {
    let mut search = log_search(&p)?;
    search.limit = limit_param(&p, search.limit)?;
    let body = st
        .query(move |st| {
            let rows: Vec<Json> = st.db.search_logs(&search)?.iter().map(log_json).collect();
            Ok(success(&Json::Array(rows).to_string(), &[]))
        })
        .await?;
    Ok(json(body))
}

/// The lines a log search's parameters select: `match[]` (one selector),
/// `q` (a text query), `start` and `end` (inclusive, to the millisecond).
pub(crate) fn log_search(p: &Params) -> ApiResult<LogSearch> {
    let mut search = LogSearch::default();
    if let Some(sel) = p.get("match[]") {
        match parse(sel)? {
            Expr::Vector(vs) => search.matchers = vs.matchers,
            _ => {
                return Err(ApiError::bad(format!(
                    "match[] {sel:?} is not a selector like {{service=\"checkout\"}}"
                )));
            }
        }
    }
    if let Some(q) = p.get("q").filter(|q| !q.is_empty()) {
        search.text = Some(TextQuery::parse(q).map_err(|e| ApiError::bad(format!("q: {e}")))?);
    }
    if let Some(s) = p.get("start") {
        search.start_ns = parse_time("start", s)?.saturating_mul(1_000_000);
    }
    if let Some(s) = p.get("end") {
        search.end_ns = parse_time("end", s)?
            .saturating_mul(1_000_000)
            .saturating_add(999_999);
    }
    Ok(search)
}

fn span_json(s: &Span) -> Json {
    json!({
        "traceId": hex(&s.trace_id),
        "spanId": hex(&s.span_id),
        "parentSpanId": if s.parent_span_id == [0; 8] { String::new() } else { hex(&s.parent_span_id) },
        "service": s.service(),
        "name": s.name,
        "kind": s.kind.as_str(),
        "startTimeUnixNano": s.start_ns.to_string(),
        "endTimeUnixNano": s.end_ns.to_string(),
        "durationNano": s.duration_ns().to_string(),
        "status": {"code": s.status.as_str(), "message": s.status_message},
        "attributes": attrs_json(&s.attributes),
        "resource": attrs_json(&s.resource),
        "events": s.events.iter().map(|e| json!({
            "timeUnixNano": e.time_ns.to_string(),
            "name": e.name,
            "attributes": attrs_json(&e.attributes),
        })).collect::<Vec<_>>(),
        "links": s.links.iter().map(|l| json!({
            "traceId": hex(&l.trace_id),
            "spanId": hex(&l.span_id),
            "attributes": attrs_json(&l.attributes),
        })).collect::<Vec<_>>(),
    })
}

fn log_json(r: &LogRecord) -> Json {
    json!({
        "timeUnixNano": r.time_ns.to_string(),
        "observedTimeUnixNano": r.observed_ns.to_string(),
        "severityNumber": r.severity,
        "severityText": r.severity_text,
        "service": r.service(),
        "body": value_json(&r.body),
        "attributes": attrs_json(&r.attributes),
        "resource": attrs_json(&r.resource),
        "traceId": if r.trace_id == [0; 16] { String::new() } else { hex(&r.trace_id) },
        "spanId": if r.span_id == [0; 8] { String::new() } else { hex(&r.span_id) },
        "flags": r.flags,
    })
}

fn attrs_json(a: &Attributes) -> Json {
    Json::Object(a.iter().map(|(k, v)| (k.clone(), value_json(v))).collect())
}

fn value_json(v: &AnyValue) -> Json {
    match v {
        AnyValue::Str(s) => json!(s),
        AnyValue::Bool(b) => json!(b),
        AnyValue::Int(i) => json!(i),
        AnyValue::Double(d) if d.is_finite() => json!(d),
        AnyValue::Double(d) => json!(d.to_string()),
        AnyValue::Bytes(b) => json!(hex(b)),
        AnyValue::Array(a) => Json::Array(a.iter().map(value_json).collect()),
        AnyValue::Map(m) => attrs_json(m),
    }
}
