//! The diagnosis endpoints: the diagnosis of a window, and the service
//! graph of a window.

use std::sync::Arc;

use axum::extract::State as AxState;
use axum::response::Response;

use super::body::Params;
use super::error::{ApiError, ApiResult};
use super::prom_api::{json, now_ms, parse_duration, parse_time};
use super::prom_json::success;
use super::state::State;

/// The window a request without one looks at.
const DEFAULT_WINDOW_MS: i64 = 15 * 60_000;

impl From<sextant_diagnose::Error> for ApiError {
    fn from(e: sextant_diagnose::Error) -> Self {
        use sextant_diagnose::Error as E;
        match e {
            E::Storage(s) => s.into(),
            E::Request(m) => ApiError::bad(m),
            E::Corrupt(m) | E::Io(m) => ApiError::new(super::error::Kind::Internal, m),
            E::Calendar(c) => ApiError::bad(c.to_string()),
        }
    }
}

/// The window of a request, in ms: `start` and `end`, or `time` (default
/// now) and the `window` before it (default 15 minutes). `sextant
/// diagnose` reads its flags through this too.
pub fn window(
    start: Option<&str>,
    end: Option<&str>,
    time: Option<&str>,
    window: Option<&str>,
) -> ApiResult<(i64, i64)> {
    match (start, end) {
        (Some(s), Some(e)) => {
            if time.is_some() || window.is_some() {
                return Err(ApiError::bad(
                    "give start and end, or time and window, not both",
                ));
            }
            Ok((parse_time("start", s)?, parse_time("end", e)?))
        }
        (None, None) => {
            let end = time.map_or(Ok(now_ms()), |t| parse_time("time", t))?;
            let len = window.map_or(Ok(DEFAULT_WINDOW_MS), |w| parse_duration("window", w))?;
            Ok((end.saturating_sub(len), end))
        }
        _ => Err(ApiError::bad("give both start and end, or neither")),
    }
}

fn window_of(p: &Params) -> ApiResult<(i64, i64)> {
    window(p.get("start"), p.get("end"), p.get("time"), p.get("window"))
}

/// `GET|POST /api/v1/sextant/service-graph?start=&end=` (or `time=` and
/// `window=`): who calls whom in the window, with each node's and each
/// call's requests, errors and latency, from spans.
pub async fn service_graph(AxState(st): AxState<Arc<State>>, p: Params) -> ApiResult<Response> {
    let (start, end) = window_of(&p)?;
    sextant_diagnose::check_window(start, end, sextant_diagnose::MAX_WINDOW_MS)?;
    let body = st
        .query(move |st| {
            let g = sextant_diagnose::service_graph(&st.db, start, end)?;
            let data = serde_json::to_string(&g)
                .map_err(|e| ApiError::bad(format!("cannot encode the graph: {e}")))?;
            Ok(success(&data, &[]))
        })
        .await?;
    Ok(json(body))
}

/// `GET|POST /api/v1/sextant/diagnose?start=&end=` (or `time=` and
/// `window=`): whether the window holds an incident, its ranked causes and
/// their evidence (schema: docs/diagnosis.md).
pub async fn diagnose(AxState(st): AxState<Arc<State>>, p: Params) -> ApiResult<Response> {
    let (start, end) = window_of(&p)?;
    let body = st
        .query(move |st| Ok(success(&diagnosis_json(st, start, end)?, &[])))
        .await?;
    Ok(json(body))
}

/// The diagnosis of `[start, end]` (ms) as its JSON (docs/diagnosis.md):
/// the answer of HTTP and gRPC alike.
pub fn diagnosis_json(st: &State, start: i64, end: i64) -> ApiResult<String> {
    let d = sextant_diagnose::diagnose(
        &st.db,
        &st.cfg.calendar,
        &sextant_diagnose::DiagnoseRequest::new(start, end),
    )?;
    serde_json::to_string(&d)
        .map_err(|e| ApiError::bad(format!("cannot encode the diagnosis: {e}")))
}

/// `GET /api/v1/sextant/incidents`: the continuous diagnosis' incidents,
/// newest first, without their diagnoses (see `/incidents/{id}`).
pub async fn incidents(AxState(st): AxState<Arc<State>>) -> ApiResult<Response> {
    let list: Vec<serde_json::Value> = st
        .incidents
        .lock()
        .list()
        .map(|i| {
            serde_json::json!({
                "id": i.id,
                "status": i.status,
                "opened": i.opened,
                "updated": i.updated,
                "resolved": i.resolved,
                "top_cause": i.top_cause,
                "earlier_causes": i.earlier_causes,
                "evaluations": i.evaluations,
                "symptoms": i.diagnosis.symptoms,
            })
        })
        .collect();
    Ok(json(success(
        &serde_json::Value::Array(list).to_string(),
        &[],
    )))
}

/// `GET /api/v1/sextant/incidents/{id}`: one incident with its latest
/// diagnosis.
pub async fn incident(
    AxState(st): AxState<Arc<State>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<Response> {
    let n: u64 = id
        .parse()
        .map_err(|_| ApiError::bad(format!("incident id {id:?}: expected a number")))?;
    let inc = st.incidents.lock().get(n).cloned().ok_or_else(|| {
        ApiError::new(
            super::error::Kind::NotFound,
            format!("incident {n} not found"),
        )
    })?;
    let data = serde_json::to_string(&inc)
        .map_err(|e| ApiError::bad(format!("cannot encode the incident: {e}")))?;
    Ok(json(success(&data, &[])))
}

/// `GET /api/v1/sextant/calendar?time=T` (default now): the market's time
/// zone and what its calendar says of the moment, so pages can show the
/// market's local time beside UTC.
pub async fn calendar(AxState(st): AxState<Arc<State>>, p: Params) -> ApiResult<Response> {
    let t = p
        .get("time")
        .map_or(Ok(now_ms()), |t| parse_time("time", t))?;
    let cal = &st.cfg.calendar;
    let m = cal.moment(t);
    let hours = cal.hours(&m.day).map(
        |(open, close)| serde_json::json!({"open": open.to_string(), "close": close.to_string()}),
    );
    let data = serde_json::json!({
        "time_zone": cal.time_zone(),
        "local": m.local.to_string(),
        "day_kind": format!("{:?}", m.day.kind()).to_lowercase(),
        "in_session": m.in_session,
        "hours": hours,
    });
    Ok(json(success(&data.to_string(), &[])))
}
