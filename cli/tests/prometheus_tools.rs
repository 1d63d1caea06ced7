//! Prometheus' own programs against `sextant serve`: `promtool query`
//! reads through the HTTP API, and a real Prometheus scrapes Sextant's
//! `/metrics` and remote_writes the samples (and metadata) back into it.
//! Both come from Debian's `prometheus` package, which `.ci/run` installs.

mod common;

use std::process::Command;

use common::{Server, eventually, have_tool, pb, remote_write};

const T0: i64 = 1_700_000_000_000;

fn load(s: &Server) {
    let series: Vec<Vec<u8>> = ["a", "b"]
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let samples: Vec<(i64, f64)> = (0..5)
                .map(|k| (T0 + k * 15_000, (i as f64 + 1.0) * k as f64))
                .collect();
            pb::series(
                &[(b"__name__", b"reqs_total"), (b"job", job.as_bytes())],
                &samples,
            )
        })
        .collect();
    assert_eq!(remote_write(s, pb::write_request(&series)).0, 204);
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool").args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "promtool {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn promtool_query_instant_and_range() {
    if !have_tool("promtool") {
        return;
    }
    let s = Server::start(&[]);
    load(&s);
    let url = format!("http://{}", s.http);
    let t = format!("{}", (T0 + 60_000) / 1000);
    let out = promtool(&[
        "query",
        "instant",
        "--time",
        &t,
        &url,
        "sum by (job) (reqs_total)",
    ]);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "{job=\"a\"} => 4 @[1700000060]",
            "{job=\"b\"} => 8 @[1700000060]"
        ],
        "{out}"
    );
    let start = format!("{}", T0 / 1000);
    let out = promtool(&[
        "query",
        "range",
        "--start",
        &start,
        "--end",
        &t,
        "--step",
        "30s",
        &url,
        "reqs_total{job=\"b\"}",
    ]);
    assert!(out.contains("reqs_total{job=\"b\"} =>"), "{out}");
    for point in ["0 @[1700000000]", "4 @[1700000030]", "8 @[1700000060]"] {
        assert!(out.contains(point), "{point} missing in {out}");
    }
    let out = promtool(&["query", "labels", &url, "job"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["a", "b"], "{out}");
    let out = promtool(&[
        "query",
        "series",
        "--start",
        &start,
        "--end",
        &t,
        "--match",
        "reqs_total{job=\"a\"}",
        &url,
    ]);
    assert!(out.contains("job=\"a\""), "{out}");
}

#[test]
fn prometheus_remote_writes_its_scrapes_into_sextant() {
    if have_tool("prometheus") {
        prometheus_round_trip(&Server::start(&[]));
    }
}

#[test]
fn prometheus_scrapes_and_remote_writes_over_tls() {
    if have_tool("prometheus") {
        prometheus_round_trip(&Server::start_tls(&[]));
    }
}

/// A real Prometheus scrapes Sextant's `/metrics` and remote_writes the
/// samples and metadata back into it, over TLS (checking the certificate
/// against the test CA) when the server has one.
fn prometheus_round_trip(s: &Server) {
    let work = tempfile::tempdir().unwrap();
    let (scheme, tls) = match &s.ca_pem {
        Some(ca) => {
            let ca_file = work.path().join("ca.pem");
            std::fs::write(&ca_file, ca).unwrap();
            let tls = format!("    tls_config:\n      ca_file: {}\n", ca_file.display());
            ("https", tls)
        }
        None => ("http", String::new()),
    };
    let config = work.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: sextant\n    scheme: {scheme}\n{tls}    static_configs:\n      - targets: ['{http}']\n\
             remote_write:\n  - url: {scheme}://{http}/api/v1/write\n{tls}    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n    metadata_config:\n      send_interval: 1s\n",
            http = s.http
        ),
    )
    .unwrap();
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            work.path().join("data").display()
        ))
        .args(["--web.listen-address=127.0.0.1:0", "--log.level=warn"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    // `up` of the scrape, written by Prometheus into Sextant.
    let up = eventually("up{job=\"sextant\"} via remote_write", || {
        let r = s.query("up{job=\"sextant\"}", now());
        (r.len() == 1).then(|| r[0].clone())
    });
    assert_eq!(up["value"][1], "1");
    assert_eq!(up["metric"]["instance"], s.http.to_string());
    // Sextant's own counters, scraped and written back, count the writes.
    let writes = eventually("remote_write request counter", || {
        let r = s.query(
            "sextant_ingest_requests_total{job=\"sextant\",protocol=\"remote_write\"}",
            now(),
        );
        r.first()
            .and_then(|e| e["value"][1].as_str()?.parse::<f64>().ok())
            .filter(|v| *v > 0.0)
    });
    assert!(writes >= 1.0);
    // Metadata travels with remote_write.
    let meta = eventually("metadata", || {
        let (_, v) = s.get_json("/api/v1/metadata?metric=sextant_ingest_requests_total");
        let t = v["data"]["sextant_ingest_requests_total"][0]["type"]
            .as_str()?
            .to_string();
        Some(t)
    });
    assert_eq!(meta, "counter");
    let _ = prom.kill();
    let _ = prom.wait();
    assert_eq!(s.get_json("/api/v1/labels").0, 200);
}
