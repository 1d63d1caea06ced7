//! Starts the real `sextant serve` binary on loopback with free ports and
//! a temporary data directory, and talks to it over HTTP.

#![allow(dead_code)] // each test binary uses a different part

pub mod browser;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running server.
pub struct Server {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub http: SocketAddr,
    pub otlp_http: SocketAddr,
    pub grpc: SocketAddr,
    pub args: Vec<String>,
    /// The CA (self-signed certificate) when the server speaks TLS.
    pub ca_pem: Option<Vec<u8>>,
}

impl Server {
    /// Starts a server with extra flags.
    pub fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        Server::start_in(dir, extra)
    }

    /// Starts a server with TLS on every listener, with a fresh
    /// self-signed certificate for `localhost` and 127.0.0.1.
    pub fn start_tls(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        let mut args = vec!["--tls-cert", cert.as_str(), "--tls-key", key.as_str()];
        args.extend_from_slice(extra);
        let mut s = Server::start_in(dir, &args);
        s.ca_pem = Some(ck.cert.pem().into_bytes());
        s
    }

    /// Starts a server on an existing data directory.
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sextant"));
        cmd.arg("--data-dir")
            .arg(dir.path())
            .args([
                "serve",
                "--http-addr",
                "127.0.0.1:0",
                "--grpc-addr",
                "127.0.0.1:0",
            ])
            .args(["--otlp-http-addr", "127.0.0.1:0"])
            .args(extra)
            .env_remove("SEXTANT_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start sextant serve");
        let out = BufReader::new(child.stdout.take().unwrap());
        let (mut http, mut otlp_http, mut grpc) = (None, None, None);
        let mut lines = out.lines();
        while http.is_none() || otlp_http.is_none() || grpc.is_none() {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            let addr = || {
                line.rsplit(' ')
                    .next()
                    .unwrap()
                    .parse::<SocketAddr>()
                    .unwrap()
            };
            if line.starts_with("sextant: http listening") {
                http = Some(addr());
            } else if line.starts_with("sextant: otlp-http listening") {
                otlp_http = Some(addr());
            } else if line.starts_with("sextant: grpc listening") {
                grpc = Some(addr());
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Server {
            child: Some(child),
            dir,
            http: http.unwrap(),
            otlp_http: otlp_http.unwrap(),
            grpc: grpc.unwrap(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            ca_pem: None,
        }
    }

    /// `http://ADDR` of the Prometheus API.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Sends SIGTERM and waits: the exit must be clean (flush and close).
    pub fn stop(mut self) -> tempfile::TempDir {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        assert!(exit.success(), "server exited with {exit}");
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    /// GET, returning status and body parsed as JSON (over HTTPS when
    /// the server speaks TLS).
    pub fn get_json(&self, path_and_query: &str) -> (u16, serde_json::Value) {
        let (status, text) = match &self.ca_pem {
            Some(ca) => https(self.http, ca, "GET", path_and_query, b""),
            None => {
                let r = client().get(self.url(path_and_query)).send().unwrap();
                (r.status().as_u16(), r.text().unwrap())
            }
        };
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (status, v)
    }

    /// An instant query's `data.result`, asserting success.
    pub fn query(&self, q: &str, t: f64) -> Vec<serde_json::Value> {
        let (status, v) = self.get_json(&format!("/api/v1/query?query={}&time={t}", enc(q)));
        assert_eq!(status, 200, "{q}: {v}");
        assert_eq!(v["status"], "success");
        v["data"]["result"].as_array().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A blocking HTTP client with a timeout (tests end by themselves).
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Percent-encodes a query parameter.
pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Polls `f` until it returns `Some` (at most 60 s).
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// A hand-rolled protobuf writer for remote_write bodies, so tests can
/// send exactly the bytes they mean (including malformed ones).
pub mod pb {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A length-delimited field.
    pub fn bytes(out: &mut Vec<u8>, tag: u32, b: &[u8]) {
        varint(out, (tag as u64) << 3 | 2);
        varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }

    /// A double field.
    pub fn double(out: &mut Vec<u8>, tag: u32, v: f64) {
        varint(out, (tag as u64) << 3 | 1);
        out.extend_from_slice(&v.to_le_bytes());
    }

    /// An int64 field.
    pub fn int64(out: &mut Vec<u8>, tag: u32, v: i64) {
        varint(out, (tag as u64) << 3);
        varint(out, v as u64);
    }

    /// A `TimeSeries` with raw label bytes and `(t, v)` samples.
    pub fn series(labels: &[(&[u8], &[u8])], samples: &[(i64, f64)]) -> Vec<u8> {
        let mut ts = Vec::new();
        for (n, v) in labels {
            let mut l = Vec::new();
            bytes(&mut l, 1, n);
            bytes(&mut l, 2, v);
            bytes(&mut ts, 1, &l);
        }
        for (t, v) in samples {
            let mut s = Vec::new();
            double(&mut s, 1, *v);
            int64(&mut s, 2, *t);
            bytes(&mut ts, 2, &s);
        }
        ts
    }

    /// A snappy-compressed `WriteRequest` of the given series.
    pub fn write_request(series: &[Vec<u8>]) -> Vec<u8> {
        let mut req = Vec::new();
        for s in series {
            bytes(&mut req, 1, s);
        }
        snap::raw::Encoder::new().compress_vec(&req).unwrap()
    }
}

/// POSTs a remote_write body; returns status and response text.
pub fn remote_write(s: &Server, body: Vec<u8>) -> (u16, String) {
    let r = client()
        .post(s.url("/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// Writes histograms of series `name{job="api"}` at `times` (ms) with
/// remote_write 2.0: sample k has count 3(k+1) and sum 4.5(k+1) in two
/// buckets of schema 1 (indexes 0 and 1, counts k+1 and 2(k+1)). Returns
/// the response's status and its histograms-written header.
#[allow(dead_code)] // not every test binary that includes `common` writes histograms
pub fn write_histograms(s: &Server, name: &str, times: &[i64]) -> (u16, String) {
    use sextant_server::remote_write::histogram::{Count, PbHistogram, PbSpan};
    use sextant_server::remote_write::v2;
    let req = v2::Request {
        symbols: ["", "__name__", name, "job", "api"]
            .map(String::from)
            .to_vec(),
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            histograms: times
                .iter()
                .enumerate()
                .map(|(k, &t)| {
                    let k = (k + 1) as f64;
                    PbHistogram {
                        count: Some(Count::Float(3.0 * k)),
                        sum: 4.5 * k,
                        schema: 1,
                        positive_spans: vec![PbSpan {
                            offset: 0,
                            length: 2,
                        }],
                        positive_counts: vec![k, 2.0 * k],
                        timestamp: t,
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&prost::Message::encode_to_vec(&req))
        .unwrap();
    let r = client()
        .post(s.url("/api/v1/write"))
        .header(
            "Content-Type",
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        )
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "2.0.0")
        .body(body)
        .send()
        .unwrap();
    let written = r
        .headers()
        .get("x-prometheus-remote-write-histograms-written")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (r.status().as_u16(), written)
}

/// Whether a Debian `prometheus` tool is installed; outside CI a missing
/// one skips the test with a notice, in CI it fails it.
pub fn have_tool(name: &str) -> bool {
    have(name, "prometheus")
}

/// Whether the program `name` (from Debian's package `package`) runs;
/// without it a test skips with a notice, except in CI, where `.ci/run`
/// installs it and its absence is a failure.
pub fn have(name: &str, package: &str) -> bool {
    let found = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is missing in CI: .ci/run installs Debian's {package} package"
        );
        eprintln!("NOTICE: {name} not installed (apt-get install {package}); test skipped");
    }
    found
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Feeds a diagnosis scenario (history and window, generated up to now)
/// to `s` over OTLP/HTTP protobuf.
pub fn feed(s: &Server, sc: &sextant_demo::scenario::Scenario) {
    use prost::Message;
    let post = |path: &str, body: Vec<u8>| {
        let r = client()
            .post(format!("http://{}{path}", s.otlp_http))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    };
    for (from, to, share) in sc.ranges() {
        let b = sc.generate(from, to.min(now_ms()), share);
        post("/v1/traces", sextant_demo::otlp::traces(&b).encode_to_vec());
        post("/v1/logs", sextant_demo::otlp::logs(&b).encode_to_vec());
    }
}

/// A scenario with `kind` that began ten minutes ago, at ~4 requests a
/// second whatever the hour (the simulator's traffic follows New York's
/// day).
pub fn fault_now(kind: sextant_demo::scenario::FaultKind) -> sextant_demo::scenario::Scenario {
    let onset = now_ms() - 10 * 60_000;
    let rate = 4.0 / sextant_demo::season::load(onset).max(0.05);
    let mut rng = fastrand::Rng::with_seed(5);
    let sc = sextant_demo::scenario::Scenario::fault_at(5, 18, &[kind], onset, rate, &mut rng);
    assert_eq!(sc.expected.len(), 1, "{}", sc.label);
    sc
}

/// One HTTP/1.1 request over TLS, trusting only `ca_pem` and checking the
/// name `localhost`; returns status and body.
pub fn https(
    addr: SocketAddr,
    ca_pem: &[u8],
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String) {
    use rustls_pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let raw = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(body).await.unwrap();
        let mut out = Vec::new();
        // A peer may close without close_notify after a full response.
        let _ = tokio::time::timeout(Duration::from_secs(60), tls.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    });
    let status = raw
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {raw:?}"));
    let body = raw
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}
