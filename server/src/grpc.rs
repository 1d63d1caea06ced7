//! The gRPC listener: OpenTelemetry's collector services for traces,
//! metrics and logs and Sextant's `sextant.v1.Query` (gzip accepted, the
//! bearer token checked), the standard health service (the server and
//! each service by name), and server reflection (`v1` and the older
//! `v1alpha` that grpcio-reflection and older tools speak) for
//! `sextant.v1` and health so `grpcurl` needs no `.proto` files. (The OTLP services are not listed there: `opentelemetry-proto`
//! ships generated code without its descriptors.)

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

use super::http::token_matches;
use super::ingest;
use super::query_grpc::pb::query_server::QueryServer;
use super::query_grpc::{DESCRIPTOR_SET, QueryService};
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
        let _slot = self.0.write_slot().await?;
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
        let _slot = self.0.write_slot().await?;
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
        let _slot = self.0.write_slot().await?;
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
            .and_then(|v| v.to_str().ok());
        if token_matches(given, token) {
            Ok(req)
        } else {
            Err(Status::unauthenticated(
                "missing or wrong bearer token: send `authorization: Bearer <token>` metadata \
                 with the server's --auth-token",
            ))
        }
    }
}

/// The gRPC router, over TLS when configured.
async fn router(st: &Arc<State>) -> Result<Router, String> {
    let otlp = Otlp(Arc::clone(st));
    let auth = Auth(st.cfg.auth_token.as_deref().map(Arc::from));
    let max = st.cfg.max_decompressed_bytes;
    let (reporter, health) = tonic_health::server::health_reporter();
    // All services report serving from the start: the database is open
    // before the listener binds. Probes that name a service (Kubernetes'
    // gRPC probe with `service:`) get SERVING, not NOT_FOUND.
    reporter.set_serving::<TraceServiceServer<Otlp>>().await;
    reporter.set_serving::<MetricsServiceServer<Otlp>>().await;
    reporter.set_serving::<LogsServiceServer<Otlp>>().await;
    reporter.set_serving::<QueryServer<QueryService>>().await;
    macro_rules! otlp_service {
        ($server:ident, $svc:expr) => {
            InterceptedService::new(
                $server::new($svc)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .send_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(max),
                auth.clone(),
            )
        };
    }
    let query = QueryServer::new(QueryService(Arc::clone(st)))
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max);
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = &st.cfg.tls {
        server = server
            .tls_config(tls.grpc_config())
            .map_err(|e| format!("TLS: {e}"))?;
    }
    let describe = |e: tonic_reflection::server::Error| format!("reflection descriptors: {e}");
    let reflection_v1 = reflection().build_v1().map_err(describe)?;
    let reflection_alpha = reflection().build_v1alpha().map_err(describe)?;
    Ok(server
        .add_service(health)
        .add_service(otlp_service!(TraceServiceServer, otlp.clone()))
        .add_service(otlp_service!(MetricsServiceServer, otlp.clone()))
        .add_service(otlp_service!(LogsServiceServer, otlp.clone()))
        .add_service(InterceptedService::new(query, auth.clone()))
        .add_service(InterceptedService::new(reflection_v1, auth.clone()))
        .add_service(InterceptedService::new(reflection_alpha, auth)))
}

/// Reflection over the descriptors of `sextant.v1` and health.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Serves gRPC on `listener` until `shutdown` completes.
pub async fn serve(
    st: Arc<State>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), String> {
    router(&st)
        .await?
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
        .map_err(|e| e.to_string())
}
