//! `sextant bench histograms`: native histograms side by side with
//! Prometheus. The same counter histograms (latencies drawn per series,
//! schema 3, one sample per series every 15 s) go to a `sextant serve`
//! as OTLP exponential histograms over HTTP, and to a Prometheus with
//! `--enable-feature=native-histograms` over remote_write. Printed for
//! each: server CPU-µs per histogram sample (from `/proc`, the server
//! process only) and wall rate; then bytes per sample of the stored
//! chunks (Sextant: its compacted blocks; Prometheus: a TSDB snapshot,
//! which writes the head as a block).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Metric,
    ResourceMetrics, ScopeMetrics, exponential_histogram_data_point::Buckets, metric::Data,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::json;
use sextant_server::remote_write::histogram::{Count, PbHistogram, PbSpan, ZeroCount};
use sextant_server::remote_write::{Label, TimeSeries, WriteRequest};
use sextant_storage::{Db, Options};

use super::{print_summary, tree_bytes};
use crate::{CliError, CliResult};

/// Options of `sextant bench histograms`.
#[derive(Args)]
pub struct HistogramsArgs {
    /// Histogram series.
    #[arg(long, default_value_t = 1000)]
    series: usize,
    /// Samples per series (15 s apart).
    #[arg(long, default_value_t = 480)]
    samples: usize,
    /// Skip the Prometheus side even when `prometheus` is installed.
    #[arg(long)]
    no_prometheus: bool,
    /// Print one JSON line.
    #[arg(long)]
    json: bool,
}

const SCHEMA: i32 = 3;
const STEP_MS: i64 = 15_000;

/// One series' running counter histogram.
struct Counter {
    /// Prometheus bucket index → observations so far.
    buckets: std::collections::BTreeMap<i32, u64>,
    count: u64,
    sum: f64,
    /// Observations per scrape, and the log-latency's mean and spread.
    rate: u32,
    mu: f64,
    sigma: f64,
}

impl Counter {
    fn new(rng: &mut fastrand::Rng) -> Self {
        Counter {
            buckets: Default::default(),
            count: 0,
            sum: 0.0,
            rate: rng.u32(5..60),
            mu: -4.0 + 3.0 * rng.f64(),
            sigma: 0.3 + 0.7 * rng.f64(),
        }
    }

    /// One scrape interval's observations (log-normal latencies).
    fn observe(&mut self, rng: &mut fastrand::Rng) {
        for _ in 0..rng.u32(0..=2 * self.rate) {
            // Box-Muller from two uniforms.
            let (u1, u2) = (rng.f64().max(1e-12), rng.f64());
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let v = (self.mu + self.sigma * z).exp();
            let index = (v.log2() * f64::from(1 << SCHEMA)).ceil() as i32;
            *self.buckets.entry(index).or_default() += 1;
            self.count += 1;
            self.sum += v;
        }
    }

    /// The OTLP point: dense bucket counts from the lowest bucket, whose
    /// OTLP index is the Prometheus one minus one.
    fn otlp(&self, t_ns: u64, series: usize) -> ExponentialHistogramDataPoint {
        let lo = self.buckets.keys().next().copied().unwrap_or(1);
        let hi = self.buckets.keys().last().copied().unwrap_or(0);
        let counts = (lo..=hi)
            .map(|i| self.buckets.get(&i).copied().unwrap_or(0))
            .collect();
        ExponentialHistogramDataPoint {
            attributes: vec![attr("series", &series.to_string())],
            start_time_unix_nano: 1,
            time_unix_nano: t_ns,
            count: self.count,
            sum: Some(self.sum),
            scale: SCHEMA,
            positive: Some(Buckets {
                offset: lo - 1,
                bucket_counts: counts,
            }),
            ..Default::default()
        }
    }

    /// The remote_write histogram: spans of consecutive buckets, counts as
    /// deltas.
    fn remote_write(&self, t_ms: i64) -> PbHistogram {
        let (mut spans, mut deltas) = (Vec::<PbSpan>::new(), Vec::new());
        let (mut prev_index, mut prev_count) = (None::<i32>, 0i64);
        for (&i, &c) in &self.buckets {
            match prev_index {
                Some(p) if i == p + 1 => {
                    if let Some(s) = spans.last_mut() {
                        s.length += 1;
                    }
                }
                Some(p) => spans.push(PbSpan {
                    offset: i - p - 1,
                    length: 1,
                }),
                None => spans.push(PbSpan {
                    offset: i,
                    length: 1,
                }),
            }
            deltas.push(c as i64 - prev_count);
            prev_count = c as i64;
            prev_index = Some(i);
        }
        PbHistogram {
            count: Some(Count::Int(self.count)),
            sum: self.sum,
            schema: SCHEMA,
            zero_count: Some(ZeroCount::Int(0)),
            positive_spans: spans,
            positive_deltas: deltas,
            timestamp: t_ms,
            ..Default::default()
        }
    }
}

fn attr(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// Both servers' request bodies, one per scrape round.
struct Requests {
    otlp: Vec<Vec<u8>>,
    remote_write: Vec<Vec<u8>>,
}

fn requests(series: usize, samples: usize) -> Requests {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut counters: Vec<Counter> = (0..series).map(|_| Counter::new(&mut rng)).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let start = (now - samples as i64 * STEP_MS).div_euclid(STEP_MS) * STEP_MS;
    let mut out = Requests {
        otlp: Vec::with_capacity(samples),
        remote_write: Vec::with_capacity(samples),
    };
    for k in 0..samples {
        let t = start + k as i64 * STEP_MS;
        for c in &mut counters {
            c.observe(&mut rng);
        }
        let otlp = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![attr("service.name", "bench")],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "rpc.duration".into(),
                        unit: "s".into(),
                        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: counters
                                .iter()
                                .enumerate()
                                .map(|(i, c)| c.otlp(t as u64 * 1_000_000, i))
                                .collect(),
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        out.otlp.push(otlp.encode_to_vec());
        let rw = WriteRequest {
            timeseries: counters
                .iter()
                .enumerate()
                .map(|(i, c)| TimeSeries {
                    labels: vec![
                        Label {
                            name: "__name__".into(),
                            value: "rpc_duration_seconds".into(),
                        },
                        Label {
                            name: "job".into(),
                            value: "bench".into(),
                        },
                        Label {
                            name: "series".into(),
                            value: i.to_string(),
                        },
                    ],
                    histograms: vec![c.remote_write(t)],
                    ..TimeSeries::default()
                })
                .collect(),
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&rw.encode_to_vec())
            .unwrap_or_default();
        out.remote_write.push(body);
    }
    out
}

/// CPU seconds (user + system) of process `pid`.
fn cpu_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn free_port() -> Result<u16, CliError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| CliError::Io {
        path: "127.0.0.1:0".into(),
        source,
    })?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|source| CliError::Io {
            path: "127.0.0.1:0".into(),
            source,
        })
}

/// Kills a child server when the benchmark ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_ready(url: &str) -> Result<(), CliError> {
    let client = reqwest::blocking::Client::new();
    for _ in 0..300 {
        if client
            .get(url)
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(CliError::Usage(format!("{url} did not become ready")))
}

/// Posts every body; returns (server CPU seconds, wall seconds).
fn send(
    pid: u32,
    url: &str,
    bodies: &[Vec<u8>],
    headers: &[(&str, &str)],
) -> Result<(f64, f64), CliError> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let (cpu0, t0) = (cpu_of(pid), Instant::now());
    for b in bodies {
        let mut req = client.post(url).body(b.clone());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req
            .send()
            .map_err(|e| CliError::Usage(format!("{url}: {e}")))?;
        if !r.status().is_success() {
            let status = r.status();
            return Err(CliError::Usage(format!(
                "{url}: {status} {}",
                r.text().unwrap_or_default()
            )));
        }
    }
    Ok((cpu_of(pid) - cpu0, t0.elapsed().as_secs_f64()))
}

pub fn run(data_dir: &Path, a: HistogramsArgs) -> CliResult {
    let io = |source| CliError::Io {
        path: data_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let work = tempfile::Builder::new()
        .prefix("bench-histograms")
        .tempdir_in(data_dir)
        .map_err(io)?;
    let reqs = requests(a.series, a.samples);
    let total = (a.series * a.samples) as f64;

    // Sextant, over OTLP/HTTP.
    let dir = work.path().join("sextant");
    let (http, otlp) = (free_port()?, free_port()?);
    let exe = std::env::current_exe().map_err(io)?;
    let child = Command::new(exe)
        .args(["--data-dir", &dir.display().to_string(), "serve"])
        .args(["--http-addr", &format!("127.0.0.1:{http}")])
        .args(["--otlp-http-addr", &format!("127.0.0.1:{otlp}")])
        .args(["--grpc-addr", "127.0.0.1:0", "--durability", "never"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io)?;
    let server = Server(child);
    wait_ready(&format!("http://127.0.0.1:{http}/readyz"))?;
    let (cpu, wall) = send(
        server.0.id(),
        &format!("http://127.0.0.1:{otlp}/v1/metrics"),
        &reqs.otlp,
        &[("Content-Type", "application/x-protobuf")],
    )?;
    drop(server);
    let db = Db::open(&dir, Options::default())?;
    db.flush()?;
    db.compact()?;
    let stats = db.stats();
    let chunk_bytes: u64 = stats.blocks.iter().map(|b| b.chunk_bytes).sum();
    let stored: u64 = stats.blocks.iter().map(|b| b.meta.samples).sum();
    db.close()?;
    let mut summary = json!({
        "series": a.series,
        "samples_per_series": a.samples,
        "sextant": {
            "ingest": "OTLP/HTTP protobuf, exponential histograms",
            "cpu_us_per_histogram": cpu * 1e6 / total,
            "histograms_per_s_wall": total / wall,
            "stored_histograms": stored,
            "chunk_bytes_per_histogram": chunk_bytes as f64 / stored.max(1) as f64,
            "disk_bytes_per_histogram": tree_bytes(&dir.join("blocks")) as f64 / stored.max(1) as f64,
        },
    });
    if !a.no_prometheus && Command::new("prometheus").arg("--version").output().is_ok() {
        summary["prometheus"] = prometheus(work.path(), &reqs, total)?;
    }
    print_summary(&summary, a.json);
    Ok(())
}

/// The Prometheus side: remote_write into `--enable-feature=native-histograms`,
/// then a snapshot of the head as a block.
fn prometheus(work: &Path, reqs: &Requests, total: f64) -> Result<serde_json::Value, CliError> {
    let io = |source| CliError::Io {
        path: work.display().to_string(),
        source,
    };
    let tsdb: PathBuf = work.join("prometheus");
    let config = work.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").map_err(io)?;
    let port = free_port()?;
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args([
            "--enable-feature=native-histograms",
            "--web.enable-remote-write-receiver",
            "--web.enable-admin-api",
            "--log.level=error",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io)?;
    let server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/-/ready"))?;
    let (cpu, wall) = send(
        server.0.id(),
        &format!("{base}/api/v1/write"),
        &reqs.remote_write,
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
    )?;
    let r = reqwest::blocking::Client::new()
        .post(format!("{base}/api/v1/admin/tsdb/snapshot"))
        .send()
        .and_then(|r| r.text())
        .map_err(|e| CliError::Usage(format!("prometheus snapshot: {e}")))?;
    let v: serde_json::Value =
        serde_json::from_str(&r).map_err(|e| CliError::Usage(format!("{e}: {r}")))?;
    let name = v["data"]["name"].as_str().unwrap_or_default();
    let snap = tsdb.join("snapshots").join(name);
    let (mut chunk_bytes, mut all_bytes) = (0u64, 0u64);
    for block in std::fs::read_dir(&snap).map_err(io)?.flatten() {
        chunk_bytes += tree_bytes(&block.path().join("chunks"));
        all_bytes += tree_bytes(&block.path());
    }
    drop(server);
    Ok(json!({
        "ingest": "remote_write 1.0, native histograms",
        "cpu_us_per_histogram": cpu * 1e6 / total,
        "histograms_per_s_wall": total / wall,
        "chunk_bytes_per_histogram": chunk_bytes as f64 / total,
        "disk_bytes_per_histogram": all_bytes as f64 / total,
    }))
}
