//! `--tls-cert`/`--tls-key`: every listener speaks TLS with the given
//! certificate, plain-text clients get nothing, and bad TLS settings stop
//! the server at start with the file named.

mod common;

use std::io::{Read, Write};
use std::process::Command;

use common::{Server, https};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

#[test]
fn every_listener_speaks_tls() {
    let s = Server::start_tls(&[]);
    let ca = s.ca_pem.clone().unwrap();

    // Prometheus API over HTTPS.
    let r = s.query("vector(3)", 1_700_000_000.0);
    assert_eq!(r[0]["value"][1], "3");
    // OTLP/HTTP over HTTPS: an empty export is accepted.
    let (status, body) = https(s.otlp_http, &ca, "POST", "/v1/traces", b"{}");
    assert_eq!(status, 200, "{body}");

    // gRPC over TLS, the certificate checked against the CA.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca))
            .domain_name("localhost");
        let ch = Channel::from_shared(format!("https://{}", s.grpc))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let reply = HealthClient::new(ch)
            .check(HealthCheckRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.status, 1, "SERVING");
        // A plain-text gRPC client cannot talk to it.
        let plain = Channel::from_shared(format!("http://{}", s.grpc))
            .unwrap()
            .connect()
            .await;
        if let Ok(ch) = plain {
            assert!(
                HealthClient::new(ch)
                    .check(HealthCheckRequest::default())
                    .await
                    .is_err()
            );
        }
    });

    // Plain HTTP to a TLS port gets no HTTP answer.
    let mut tcp = std::net::TcpStream::connect(s.http).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    tcp.write_all(b"GET /api/v1/labels HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    assert!(!got.starts_with(b"HTTP/1.1 200"), "{got:?}");
    // And the server still serves TLS clients afterwards.
    assert_eq!(s.get_json("/api/v1/labels").0, 200);
}

#[test]
fn bad_tls_settings_stop_the_server_at_start_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let missing = dir.path().join("missing.pem");
    let start = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("serve")
            .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
            .args(["--otlp-http-addr", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let g = garbage.display().to_string();
    let m = missing.display().to_string();
    let err = start(&["--tls-cert", &g]);
    assert!(err.contains("--tls-key"), "{err}");
    let err = start(&["--tls-cert", &m, "--tls-key", &g]);
    assert!(err.contains("missing.pem"), "{err}");
    let err = start(&["--tls-cert", &g, "--tls-key", &g]);
    assert!(err.contains("garbage.pem"), "{err}");
}
