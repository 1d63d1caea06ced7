//! A real Prometheus (Debian's package, `--enable-feature=native-histograms`)
//! scrapes a target that exposes a native histogram in the protobuf
//! exposition format and remote-writes what it scraped into Sextant; the
//! same histogram queries then agree between the two servers.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{Server, client, enc, eventually, have_tool};
use prost::Message;

/// `io.prometheus.client.MetricFamily` and what it holds, as far as a
/// native histogram needs.
mod exposition {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricFamily {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub help: String,
        #[prost(int32, tag = "3")]
        pub r#type: i32,
        #[prost(message, repeated, tag = "4")]
        pub metric: Vec<Metric>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPair {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metric {
        #[prost(message, repeated, tag = "1")]
        pub label: Vec<LabelPair>,
        #[prost(message, optional, tag = "7")]
        pub histogram: Option<Histogram>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(sint32, tag = "1")]
        pub offset: i32,
        #[prost(uint32, tag = "2")]
        pub length: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        #[prost(uint64, tag = "1")]
        pub sample_count: u64,
        #[prost(double, tag = "2")]
        pub sample_sum: f64,
        #[prost(sint32, tag = "5")]
        pub schema: i32,
        #[prost(double, tag = "6")]
        pub zero_threshold: f64,
        #[prost(uint64, tag = "7")]
        pub zero_count: u64,
        #[prost(message, repeated, tag = "9")]
        pub negative_span: Vec<Span>,
        #[prost(sint64, repeated, tag = "10")]
        pub negative_delta: Vec<i64>,
        #[prost(message, repeated, tag = "12")]
        pub positive_span: Vec<Span>,
        #[prost(sint64, repeated, tag = "13")]
        pub positive_delta: Vec<i64>,
    }
}

/// Counts as Prometheus' delta encoding: each bucket minus the one before.
fn deltas(counts: &[u64]) -> Vec<i64> {
    let mut prev = 0i64;
    counts
        .iter()
        .map(|&c| {
            let d = c as i64 - prev;
            prev = c as i64;
            d
        })
        .collect()
}

/// The exposition at scrape `k`: a counter histogram whose buckets grow
/// unevenly, with a zero bucket and negative buckets, and a gap between
/// two positive runs.
fn exposition(k: u64) -> Vec<u8> {
    let pos = [k, 2 * k + 1, 3 * k, k / 2, 5 * k];
    let neg = [k, k / 3];
    let zero = k % 7;
    let count = pos.iter().sum::<u64>() + neg.iter().sum::<u64>() + zero;
    let family = exposition::MetricFamily {
        name: "rpc_duration_seconds".into(),
        help: "RPC latency.".into(),
        r#type: 4,
        metric: vec![exposition::Metric {
            label: vec![exposition::LabelPair {
                name: "method".into(),
                value: "pay".into(),
            }],
            histogram: Some(exposition::Histogram {
                sample_count: count,
                sample_sum: 0.75 * count as f64 + k as f64 * 0.01,
                schema: 2,
                zero_threshold: 0.001,
                zero_count: zero,
                negative_span: vec![exposition::Span {
                    offset: -1,
                    length: 2,
                }],
                negative_delta: deltas(&neg),
                positive_span: vec![
                    exposition::Span {
                        offset: -3,
                        length: 3,
                    },
                    exposition::Span {
                        offset: 4,
                        length: 2,
                    },
                ],
                positive_delta: deltas(&pos),
            }),
        }],
    };
    family.encode_length_delimited_to_vec()
}

/// Serves the exposition on loopback, one more step of the counter per
/// scrape; returns the address.
fn serve_target() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let scrapes = Arc::new(AtomicU64::new(1));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let k = scrapes.fetch_add(1, Ordering::Relaxed);
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            // A counter that has been running a while: `rate` then never
            // extrapolates to its zero point, which Prometheus 3 (and
            // Sextant) does for histograms and Prometheus 2.42 did not.
            let body = exposition(1_000 + k * 10);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.google.protobuf; \
                 proto=io.prometheus.client.MetricFamily; encoding=delimited\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
    });
    addr
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An instant query's result at `t` from Prometheus' HTTP API at `base`.
fn query(base: &str, q: &str, t: f64) -> Vec<serde_json::Value> {
    let url = format!("{base}/api/v1/query?query={}&time={t}", enc(q));
    let text = client().get(url).send().unwrap().text().unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"].as_array().unwrap().clone()
}

fn value(r: &[serde_json::Value]) -> f64 {
    r[0]["value"][1].as_str().unwrap().parse().unwrap()
}

#[test]
fn prometheus_scrapes_native_histograms_and_both_servers_agree() {
    if !have_tool("prometheus") {
        return;
    }
    let s = Server::start(&[]);
    let target = serve_target();
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n\
             scrape_configs:\n  - job_name: rpc\n    static_configs:\n      - targets: ['{target}']\n\
             remote_write:\n  - url: http://{http}/api/v1/write\n    send_native_histograms: true\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n",
            http = s.http
        ),
    )
    .unwrap();
    let port = free_port();
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            work.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(["--enable-feature=native-histograms", "--log.level=warn"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let prom_url = format!("http://127.0.0.1:{port}");
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    // Enough scrapes in Sextant for a rate over several of them.
    let sel = "rpc_duration_seconds{job=\"rpc\"}";
    let t = eventually("six native histograms written into Sextant", || {
        let r = s.query(&format!("count_over_time({sel}[1m])"), now());
        (r.len() == 1 && value(&r) >= 6.0).then(|| {
            let ts = s.query(&format!("timestamp({sel})"), now());
            value(&ts)
        })
    });
    // Half a scrape before the newest sample: no window edge falls on a
    // sample (Prometheus 2.42 closed windows at both ends, Prometheus 3
    // and Sextant leave the start open), so both servers read the same.
    let t = t - 0.5;
    let got = s.query(sel, t);
    assert!(
        got[0]["histogram"].is_object() || got[0]["histogram"].is_array(),
        "{got:?}"
    );
    // Prometheus 2.42 (Debian 12) has no histogram_avg or histogram_stddev.
    let queries = [
        format!("histogram_count({sel})"),
        format!("histogram_sum({sel})"),
        format!("histogram_fraction(0, 0.5, {sel})"),
        format!("histogram_count(rate({sel}[5s]))"),
        format!("histogram_sum(rate({sel}[5s]))"),
        format!("histogram_count(increase({sel}[5s]))"),
        format!("histogram_sum(sum({sel}))"),
    ];
    for q in &queries {
        let mine = s.query(q, t);
        let theirs = query(&prom_url, q, t);
        assert_eq!(mine.len(), 1, "{q}: Sextant {mine:?}");
        assert_eq!(theirs.len(), 1, "{q}: Prometheus {theirs:?}");
        let (a, b) = (value(&mine), value(&theirs));
        assert!(
            (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) || (a.is_nan() && b.is_nan()),
            "{q} at {t}: Sextant {a}, Prometheus {b}"
        );
    }
    // Quantiles land in the same bucket. Inside it, Prometheus 2.42
    // interpolated linearly; Prometheus 3 (whose tests Sextant passes)
    // interpolates on the log scale of exponential buckets. Each server's
    // answer is checked against its rule, computed here from the buckets
    // Prometheus returns.
    for (phi, inner) in [
        (0.05, sel.to_string()),
        (0.5, sel.to_string()),
        (0.99, sel.to_string()),
        (0.9, format!("rate({sel}[5s])")),
    ] {
        let h = &query(&prom_url, &inner, t)[0]["histogram"][1];
        let f = |v: &serde_json::Value| v.as_str().unwrap().parse::<f64>().unwrap();
        let count = f(&h["count"]);
        let rank = phi * count;
        let (mut before, mut bucket) = (0.0, None);
        for b in h["buckets"].as_array().unwrap() {
            let (lo, hi, c) = (f(&b[1]), f(&b[2]), f(&b[3]));
            if before + c >= rank {
                bucket = Some((lo, hi, (rank - before) / c));
                break;
            }
            before += c;
        }
        let (lo, hi, share) = bucket.unwrap();
        let q = format!("histogram_quantile({phi}, {inner})");
        let (mine, theirs) = (value(&s.query(&q, t)), value(&query(&prom_url, &q, t)));
        let linear = lo + (hi - lo) * share;
        assert!(
            (theirs - linear).abs() <= 1e-9 * linear.abs(),
            "{q}: Prometheus {theirs} vs {linear}"
        );
        let log = if lo > 0.0 {
            lo * (hi / lo).powf(share)
        } else if hi < 0.0 {
            -((-hi) * (lo / hi).powf(1.0 - share))
        } else {
            linear
        };
        assert!(
            (mine - log).abs() <= 1e-9 * log.abs(),
            "{q}: Sextant {mine} vs {log}"
        );
    }
    // The histogram itself, bucket for bucket (bounds to the last bits:
    // Prometheus reads them from a table, Sextant computes them).
    let mine = &s.query(sel, t)[0]["histogram"][1];
    let theirs = &query(&prom_url, sel, t)[0]["histogram"][1];
    assert_eq!(mine["count"], theirs["count"]);
    assert_eq!(mine["sum"], theirs["sum"]);
    let (a, b) = (
        mine["buckets"].as_array().unwrap(),
        theirs["buckets"].as_array().unwrap(),
    );
    assert_eq!(a.len(), b.len(), "{mine} vs {theirs}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x[0], y[0], "boundary rule of {x} vs {y}");
        assert_eq!(x[3], y[3], "count of {x} vs {y}");
        for i in 1..3 {
            let (p, q) = (
                x[i].as_str().unwrap().parse::<f64>().unwrap(),
                y[i].as_str().unwrap().parse::<f64>().unwrap(),
            );
            assert!((p - q).abs() <= 4.0 * f64::EPSILON * p.abs(), "{x} vs {y}");
        }
    }
    let _ = prom.kill();
    let _ = prom.wait();
}
