//! The gRPC listener: OpenTelemetry's collector services for traces,
//! metrics and logs (gzip accepted, the bearer token checked) and the
//! standard health service.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::{Router, TcpIncoming};
use tonic::{Request, Response, Status};

use super::http::constant_time_eq;
use super::ingest;
use super::state::State;

/// Implements the three OTLP collector services over the shared state.
#[derive(Clone)]
struct Otlp(Arc<State>);

#[tonic::async_trait]
impl TraceService for Otlp {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        Ok(Response::new(
            ingest::traces(&self.0, req.into_inner()).await?,
        ))
    }
}

#[tonic::async_trait]
impl MetricsService for Otlp {
    async fn export(
        &self,
        req: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        Ok(Response::new(
            ingest::metrics(&self.0, req.into_inner()).await?,
        ))
    }
}

#[tonic::async_trait]
impl LogsService for Otlp {
    async fn export(
        &self,
        req: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        Ok(Response::new(
            ingest::logs(&self.0, req.into_inner()).await?,
        ))
    }
}

/// Checks `authorization: Bearer <token>` when the server has a token.
#[derive(Clone)]
struct Auth(Option<Arc<str>>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = &self.0 else { return Ok(req) };
        let given = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            Ok(req)
        } else {
            Err(Status::unauthenticated(
                "missing or wrong bearer token: send `authorization: Bearer <token>` metadata \
                 with the server's --auth-token",
            ))
        }
    }
}

/// The gRPC router.
fn router(st: &Arc<State>) -> Router {
    let otlp = Otlp(Arc::clone(st));
    let auth = Auth(st.cfg.auth_token.as_deref().map(Arc::from));
    let max = st.cfg.max_decompressed_bytes;
    let (reporter, health) = tonic_health::server::health_reporter();
    // All services report serving from the start: the database is open
    // before the listener binds.
    drop(reporter);
    macro_rules! otlp_service {
        ($server:ident) => {
            InterceptedService::new(
                $server::new(otlp.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .send_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(max),
                auth.clone(),
            )
        };
    }
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(otlp_service!(TraceServiceServer))
        .add_service(otlp_service!(MetricsServiceServer))
        .add_service(otlp_service!(LogsServiceServer))
}

/// Serves gRPC on `listener` until `shutdown` completes.
pub async fn serve(
    st: Arc<State>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    router(&st)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
}
