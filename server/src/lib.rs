//! The network server (`sextant serve`): the database behind OTLP (gRPC
//! and HTTP), the Prometheus HTTP API with remote_write, Sextant's query
//! API (HTTP and gRPC), admin endpoints, limits, TLS and bearer tokens.
//!
//! The storage engine is synchronous; handlers run engine calls on
//! Tokio's blocking pool ([`state::State::blocking`]) so slow fsyncs or
//! queries never stall the network threads.

pub mod alloc;
mod band_api;
pub mod body;
pub mod config;
mod continuous;
pub mod diagnose_api;
pub mod error;
mod grpc;
pub mod http;
mod ingest;
mod label_cache;
mod log_volume;
pub mod otlp;
mod otlp_http;
mod prom_api;
mod prom_json;
pub mod query_grpc;
pub mod remote_write;
mod self_metrics;
pub mod sextant_api;
pub mod state;
pub mod tls;
mod ui;
mod wire;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use sextant_storage::Db;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{ServeArgs, parse_durability};
use error::{ApiError, ApiResult};
pub use prom_api::{parse_duration, parse_time};

/// Runs the server until SIGINT or SIGTERM, then stops the listeners,
/// waits for requests in flight and closes the database (syncing the WAL).
pub fn run(data_dir: &Path, args: ServeArgs) -> ApiResult<()> {
    run_with(data_dir, args, |_| async {})
}

/// A running server: its database and the addresses it listens on.
#[derive(Debug, Clone)]
pub struct Listening {
    /// The database it serves.
    pub db: Arc<Db>,
    /// gRPC: OTLP, sextant.v1.Query, health, reflection.
    pub grpc: SocketAddr,
    /// OTLP/HTTP.
    pub otlp_http: SocketAddr,
    /// The Prometheus-compatible HTTP API.
    pub http: SocketAddr,
    /// Sending `true` shuts the server down, as SIGTERM does.
    pub stop: Arc<watch::Sender<bool>>,
}

/// [`run`], with `side` started on the server's runtime once every
/// listener is bound (how `sextant demo` feeds the server it runs).
pub fn run_with<F, Fut>(data_dir: &Path, args: ServeArgs, side: F) -> ApiResult<()>
where
    F: FnOnce(Listening) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let cfg = args.resolve(data_dir)?;
    let db = Arc::new(Db::open(&cfg.data_dir, cfg.db.clone())?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sextant-io")
        // Requests parse and evaluate queries on these threads.
        .thread_stack_size(sextant_query::STACK_BYTES)
        .build()
        .map_err(|e| ApiError::config(format!("cannot start the async runtime: {e}")))?;
    let st = state::State::new(Arc::clone(&db), cfg.clone())?;
    let res = rt.block_on(serve(st, &cfg, side));
    rt.shutdown_timeout(std::time::Duration::from_secs(10));
    close(&db)?;
    eprintln!("sextant: stopped; WAL synced and closed");
    res
}

/// Closes the database at shutdown. If the WAL cannot be synced (a disk
/// gone read-only, full, or failing), the error says what survives: an
/// operator reads it at 2 AM deciding whether data was lost.
pub fn close(db: &Db) -> ApiResult<()> {
    db.close().map_err(|e| {
        ApiError::new(
            error::Kind::Internal,
            format!(
                "stopped, but the WAL could not be synced and closed: {e}. Writes acknowledged \
             with --durability always were on disk before they were acknowledged and are \
             kept; with interval or never, those since the last sync may be lost. The next \
             start replays what the WAL holds (`sextant repair` if it refuses to open)."
            ),
        )
    })
}

async fn bind(what: &str, addr: SocketAddr) -> ApiResult<TcpListener> {
    let l = TcpListener::bind(addr)
        .await
        .map_err(|e| ApiError::config(format!("cannot listen on {addr} ({what}): {e}")))?;
    let local = l
        .local_addr()
        .map_err(|e| ApiError::config(e.to_string()))?;
    // One line per listener on stdout, so scripts and tests that asked
    // for port 0 learn the port.
    println!("sextant: {what} listening on {local}");
    Ok(l)
}

async fn serve<F, Fut>(st: Arc<state::State>, cfg: &config::Config, side: F) -> ApiResult<()>
where
    F: FnOnce(Listening) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let http_l = bind("http", cfg.http_addr).await?;
    let otlp_l = bind("otlp-http", cfg.otlp_http_addr).await?;
    let grpc_l = bind("grpc", cfg.grpc_addr).await?;
    let addr = |l: &TcpListener| l.local_addr().map_err(|e| ApiError::config(e.to_string()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    tokio::spawn(side(Listening {
        db: Arc::clone(&st.db),
        grpc: addr(&grpc_l)?,
        otlp_http: addr(&otlp_l)?,
        http: addr(&http_l)?,
        stop: Arc::clone(&stop_tx),
    }));
    println!("sextant: serving data dir {}", cfg.data_dir.display());
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let tls = cfg.tls.as_ref().map(tls::Tls::http_config);
    let http = serve_http(
        http_l,
        http::prometheus(Arc::clone(&st)),
        tls.clone(),
        stopped(),
    );
    let otlp = serve_http(otlp_l, http::otlp(Arc::clone(&st)), tls, stopped());
    let grpc = grpc::serve(Arc::clone(&st), grpc_l, stopped());
    if let Some(every) = cfg.diagnose_every {
        tokio::spawn(continuous::run(Arc::clone(&st), every, stopped()));
    }
    tokio::spawn(async move {
        shutdown_signal().await;
        eprintln!("sextant: shutting down");
        let _ = stop_tx.send(true);
    });
    let servers = async { tokio::join!(http, otlp, grpc) };
    // Graceful shutdown waits for open connections to end; a client that
    // keeps one open (an idle gRPC channel) must not hold SIGTERM forever.
    let grace = async {
        stopped().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        (a, b, c) = servers => {
            a.and(b)
                .map_err(|e| ApiError::config(format!("http server failed: {e}")))?;
            c.map_err(|e| ApiError::config(format!("grpc server failed: {e}")))?;
        }
        () = grace => eprintln!(
            "sextant: connections still open {SHUTDOWN_GRACE:?} after the shutdown began; \
             closing them"
        ),
    }
    Ok(())
}

/// How long a shutdown waits for open connections before closing them.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `app` on `l`, over TLS when configured, until `shutdown`.
async fn serve_http(
    l: TcpListener,
    app: axum::Router,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        Some(cfg) => {
            axum::serve(tls::TlsListener::new(l, cfg)?, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => axum::serve(l, app).with_graceful_shutdown(shutdown).await,
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
