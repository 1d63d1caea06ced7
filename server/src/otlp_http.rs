//! OTLP/HTTP: `POST /v1/traces`, `/v1/metrics`, `/v1/logs` with protobuf
//! or JSON bodies, optionally gzip-compressed. Answers in the request's
//! encoding; errors carry a `google.rpc.Status` as the OTLP spec asks.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde::Serialize;

use super::body;
use super::error::{ApiError, ApiResult, Kind};
use super::ingest;
use super::otlp::json;
use super::state::State;

/// A request read from OTLP/JSON by the strict decoder.
trait FromJson: Sized {
    fn from_json(bytes: &[u8]) -> ApiResult<Self>;
}

impl FromJson for ExportTraceServiceRequest {
    fn from_json(bytes: &[u8]) -> ApiResult<Self> {
        json::traces(bytes)
    }
}

impl FromJson for ExportMetricsServiceRequest {
    fn from_json(bytes: &[u8]) -> ApiResult<Self> {
        json::metrics(bytes)
    }
}

impl FromJson for ExportLogsServiceRequest {
    fn from_json(bytes: &[u8]) -> ApiResult<Self> {
        json::logs(bytes)
    }
}

/// The OTLP/HTTP routes.
pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/metrics", post(metrics))
        .route("/v1/logs", post(logs))
}

/// `google.rpc.Status`, the body of OTLP/HTTP error responses.
#[derive(Clone, PartialEq, Message, Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

async fn traces(AxState(st): AxState<Arc<State>>, headers: HeaderMap, b: Body) -> Response {
    handle(&st, &headers, b, |st, req| async move {
        ingest::traces(&st, req).await
    })
    .await
}

async fn metrics(AxState(st): AxState<Arc<State>>, headers: HeaderMap, b: Body) -> Response {
    handle(&st, &headers, b, |st, req| async move {
        ingest::metrics(&st, req).await
    })
    .await
}

async fn logs(AxState(st): AxState<Arc<State>>, headers: HeaderMap, b: Body) -> Response {
    handle(&st, &headers, b, |st, req| async move {
        ingest::logs(&st, req).await
    })
    .await
}

async fn handle<Req, Resp, F, Fut>(
    st: &Arc<State>,
    headers: &HeaderMap,
    b: Body,
    store: F,
) -> Response
where
    Req: Message + Default + FromJson,
    Resp: Message + Serialize,
    F: FnOnce(Arc<State>, Req) -> Fut,
    Fut: std::future::Future<Output = ApiResult<Resp>>,
{
    let enc = match body::media_type(headers).as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        other => {
            let e = ApiError::new(
                Kind::UnsupportedMedia,
                format!(
                    "OTLP/HTTP expects Content-Type application/x-protobuf or application/json, \
                     got {other:?}"
                ),
            );
            return error(e, Encoding::Protobuf);
        }
    };
    let res = async {
        let _slot = st.write_slot().await?;
        let raw = body::read(b, st.cfg.max_body_bytes).await?;
        let bytes = body::decode_content_encoding(headers, raw, st.cfg.max_decompressed_bytes)?;
        let req: Req = match enc {
            Encoding::Protobuf => Req::decode(bytes.as_slice())
                .map_err(|e| ApiError::bad(format!("malformed OTLP protobuf: {e}")))?,
            Encoding::Json => Req::from_json(&bytes)?,
        };
        store(Arc::clone(st), req).await
    }
    .await;
    match res {
        Ok(resp) => reply(&resp, enc),
        Err(e) => error(e, enc),
    }
}

fn reply<T: Message + Serialize>(msg: &T, enc: Encoding) -> Response {
    match enc {
        Encoding::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            msg.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_vec(msg).unwrap_or_default(),
        )
            .into_response(),
    }
}

fn error(e: ApiError, enc: Encoding) -> Response {
    let status = RpcStatus {
        code: tonic::Status::from(ApiError::new(e.kind, "")).code() as i32,
        message: e.message.clone(),
    };
    let mut resp = reply(&status, enc);
    *resp.status_mut() = e.status();
    resp
}
