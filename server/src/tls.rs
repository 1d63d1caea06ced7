//! TLS on every listener when `--tls-cert` and `--tls-key` are given: the
//! gRPC listener through tonic's own rustls acceptor, the two HTTP
//! listeners through [`TlsListener`], which hands axum connections whose
//! handshake is already done.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;

use crate::error::ApiError;

/// A handshake that has not finished by then is dropped, so a client that
/// connects and stays silent holds nothing but its socket.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for axum; beyond it the accept loop
/// waits (the kernel's backlog holds the rest).
const ACCEPT_QUEUE: usize = 64;

/// The server's certificate chain and private key (PEM), read at start.
#[derive(Clone)]
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    /// Built once at start, shared by both HTTP listeners.
    http: Arc<ServerConfig>,
}

impl std::fmt::Debug for Tls {
    /// Paths only: the key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads both files and checks that they parse and match, so a wrong
    /// path or file fails at start with its name, not at the first
    /// handshake.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, ApiError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| ApiError::config(format!("{}: {e}", p.display())))
        };
        let (cert_pem, key_pem) = (read(cert)?, read(key)?);
        let http = http_config(cert, &cert_pem, key, &key_pem)?;
        Ok(Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            cert_pem,
            key_pem,
            http,
        })
    }

    /// The rustls configuration of the HTTP listeners (HTTP/1.1).
    pub fn http_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.http)
    }

    /// The same identity for tonic's acceptor on the gRPC listener.
    pub fn grpc_config(&self) -> tonic::transport::ServerTlsConfig {
        let id = tonic::transport::Identity::from_pem(&self.cert_pem, &self.key_pem);
        tonic::transport::ServerTlsConfig::new().identity(id)
    }
}

/// Parses the PEM files and builds the HTTP listeners' configuration;
/// errors name the file at fault.
fn http_config(
    cert: &Path,
    cert_pem: &[u8],
    key: &Path,
    key_pem: &[u8],
) -> Result<Arc<ServerConfig>, ApiError> {
    let bad = |what: &Path, e: &dyn std::fmt::Display| {
        ApiError::config(format!("TLS: {}: {e}", what.display()))
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, &e))?;
    if chain.is_empty() {
        return Err(bad(cert, &"no CERTIFICATE block in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad(key, &e))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(cert, &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| bad(key, &e))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// An axum listener over TLS. A background task accepts TCP connections
/// and runs each handshake in its own task (with a timeout), so a slow
/// client never delays the others; finished ones queue for axum.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`. The accept task ends when the listener
    /// is dropped (axum's graceful shutdown drops it).
    pub fn new(tcp: TcpListener, cfg: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(ACCEPT_QUEUE);
        let acceptor = TlsAcceptor::from(cfg);
        tokio::spawn(async move {
            loop {
                let (sock, peer) = tokio::select! {
                    _ = tx.closed() => return,
                    r = tcp.accept() => match r {
                        Ok(c) => c,
                        Err(e) => {
                            // Out of file descriptors and the like: back off.
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {peer} failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task only stops once this listener is gone, so
            // the channel cannot close while we wait on it.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
