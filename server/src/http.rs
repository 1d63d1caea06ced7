//! The HTTP routers: the Prometheus-compatible API (with remote_write,
//! admin, health and `/metrics`) and OTLP/HTTP, each behind the optional
//! bearer-token check.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State as AxState};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::error::{ApiError, ApiResult, Kind};
use super::state::State;
use super::{
    band_api, diagnose_api, log_volume, otlp_http, prom_api, remote_write, sextant_api, ui,
};

/// The Prometheus-compatible API on `--http-addr`.
pub fn prometheus(st: Arc<State>) -> Router {
    let r = Router::new()
        .route("/api/v1/query", get(prom_api::query).post(prom_api::query))
        .route(
            "/api/v1/query_range",
            get(prom_api::query_range).post(prom_api::query_range),
        )
        .route(
            "/api/v1/series",
            get(prom_api::series).post(prom_api::series),
        )
        .route(
            "/api/v1/labels",
            get(prom_api::labels).post(prom_api::labels),
        )
        .route("/api/v1/label/{name}/values", get(prom_api::label_values))
        .route(
            "/api/v1/query_exemplars",
            get(prom_api::query_exemplars).post(prom_api::query_exemplars),
        )
        .route("/api/v1/metadata", get(prom_api::metadata))
        .route("/api/v1/status/buildinfo", get(prom_api::buildinfo))
        .route(
            "/api/v1/sextant/query",
            get(sextant_api::query).post(sextant_api::query),
        )
        .route(
            "/api/v1/sextant/query_band",
            get(band_api::query_band).post(band_api::query_band),
        )
        .route("/api/v1/sextant/traces/{id}", get(sextant_api::trace))
        .route(
            "/api/v1/sextant/logs",
            get(sextant_api::logs).post(sextant_api::logs),
        )
        .route(
            "/api/v1/sextant/logs/volume",
            get(log_volume::log_volume).post(log_volume::log_volume),
        )
        .route(
            "/api/v1/sextant/diagnose",
            get(diagnose_api::diagnose).post(diagnose_api::diagnose),
        )
        .route("/api/v1/sextant/incidents", get(diagnose_api::incidents))
        .route("/api/v1/sextant/calendar", get(diagnose_api::calendar))
        .route(
            "/api/v1/sextant/incidents/{id}",
            get(diagnose_api::incident),
        )
        .route(
            "/api/v1/sextant/service-graph",
            get(diagnose_api::service_graph).post(diagnose_api::service_graph),
        )
        .route("/api/v1/write", post(remote_write::write))
        .route("/api/v1/admin/flush", post(flush))
        .route("/api/v1/admin/compact", post(compact))
        .route("/metrics", get(self_metrics))
        .merge(otlp_http::routes())
        .merge(ui::routes());
    finish(r, st)
}

/// OTLP/HTTP on `--otlp-http-addr`.
pub fn otlp(st: Arc<State>) -> Router {
    finish(otlp_http::routes(), st)
}

fn finish(r: Router<Arc<State>>, st: Arc<State>) -> Router {
    r.route("/healthz", get(ok))
        .route("/readyz", get(ready))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&st), auth))
        // Handlers read bodies themselves, with their own limits and errors.
        .layer(DefaultBodyLimit::disable())
        .with_state(st)
}

async fn auth(AxState(st): AxState<Arc<State>>, req: Request, next: Next) -> Response {
    let Some(token) = &st.cfg.auth_token else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    // The page and its assets hold no data; the page asks for the token
    // and sends it with every API call.
    if path == "/healthz" || path == "/readyz" || ui::is_asset(path) {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if token_matches(given, token) {
        next.run(req).await
    } else {
        ApiError::new(
            Kind::Unauthorized,
            "missing or wrong bearer token: send `Authorization: Bearer <token>` with the \
             server's --auth-token",
        )
        .into_response()
    }
}

/// Whether an `Authorization` value carries `token` as a bearer
/// credential. The scheme name is case-insensitive (RFC 7235 §2.1), the
/// token is compared without an early exit, so timing does not reveal it.
pub fn token_matches(authorization: Option<&str>, token: &str) -> bool {
    let Some((scheme, given)) = authorization.and_then(|v| v.split_once(' ')) else {
        return false;
    };
    let (a, b) = (given.trim_start().as_bytes(), token.as_bytes());
    scheme.eq_ignore_ascii_case("bearer")
        && a.len() == b.len()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn ok() -> &'static str {
    "ok\n"
}

async fn ready(AxState(st): AxState<Arc<State>>) -> Response {
    match st.db.check_writable() {
        Ok(()) => "ready\n".into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(Kind::NotFound, "no such endpoint")
}

async fn self_metrics(AxState(st): AxState<Arc<State>>) -> ApiResult<Response> {
    let text = st
        .blocking(|st| Ok(st.metrics.render(&st.db, st.writes_in_progress())))
        .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// `POST /api/v1/admin/flush`: writes the head out as blocks now.
async fn flush(AxState(st): AxState<Arc<State>>) -> ApiResult<StatusCode> {
    st.blocking(|st| Ok(st.db.flush()?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/admin/compact`: merges blocks now.
async fn compact(AxState(st): AxState<Arc<State>>) -> ApiResult<StatusCode> {
    st.blocking(|st| Ok(st.db.compact()?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
