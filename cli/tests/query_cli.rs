//! `sextant query` against a running server (`--url`) and against its
//! data directory, in each output format, and with bad input (issue 20).

mod common;

use common::{Server, client, pb, remote_write};
use std::process::Command;

const T0: i64 = 1_700_000_000_000;

fn sextant(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .arg("--data-dir")
        .arg(dir)
        .arg("query")
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn load(s: &Server) {
    let series = [("a", 1.0), ("b", 2.0)].map(|(job, v)| {
        pb::series(
            &[(b"__name__", b"reqs"), (b"job", job.as_bytes())],
            &[(T0, v), (T0 + 60_000, v * 10.0)],
        )
    });
    assert_eq!(remote_write(s, pb::write_request(&series)).0, 204);
    let logs = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeLogs": [{"logRecords": [
            {"timeUnixNano": ((T0 + 1_000) * 1_000_000).to_string(), "severityText": "ERROR",
             "severityNumber": 17, "body": {"stringValue": "payment failed, retrying"}},
        ]}],
    }]});
    let r = client()
        .post(format!("http://{}/v1/logs", s.otlp_http))
        .header("content-type", "application/json")
        .body(logs.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// The answers `sextant query` prints, the same from a server and from
/// its data directory.
fn check(dir: &std::path::Path, target: &[&str]) {
    let t = (T0 / 1000 + 60).to_string();
    let with = |extra: &[&str]| {
        let mut args: Vec<&str> = target.to_vec();
        args.extend_from_slice(extra);
        sextant(dir, &args)
    };
    let (ok, out, err) = with(&["sum by (job) (reqs)", "--time", &t]);
    assert!(ok, "{err}");
    assert!(out.starts_with("SERIES"), "{out}");
    assert!(out.contains("{job=\"a\"}") && out.contains("10"), "{out}");
    let (ok, out, err) = with(&[
        "reqs",
        "--start",
        &(T0 / 1000).to_string(),
        "--end",
        &t,
        "--step",
        "60s",
        "-o",
        "csv",
    ]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "series,time,value");
    assert_eq!(lines.len(), 5, "{out}");
    assert!(
        lines[1].starts_with("\"reqs{job=\"\"a\"\"}\",2023-11-14T22:13:20Z,1"),
        "{out}"
    );
    let (ok, out, err) = with(&["reqs{job=\"b\"}", "--time", &t, "-o", "json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["resultType"], "vector");
    assert_eq!(v["result"][0]["value"][1], "20");
    let (ok, out, err) = with(&[
        r#"logs({service="checkout"} |= "payment")"#,
        "--start",
        &(T0 / 1000).to_string(),
        "--end",
        &t,
    ]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("TIME") && out.contains("payment failed, retrying"),
        "{out}"
    );
    // A parse error names line and column and fails the command.
    let (ok, _, err) = with(&["sum(rate(reqs[5m])", "--time", &t]);
    assert!(!ok);
    assert!(err.contains("1:19") && err.contains("parse error"), "{err}");
    let (ok, _, err) = with(&["reqs", "--start", "1"]);
    assert!(!ok);
    assert!(
        err.contains("--start and --end") || err.contains("start and end"),
        "{err}"
    );
}

#[test]
fn query_a_server_and_a_data_directory_in_every_format() {
    let s = Server::start(&[]);
    load(&s);
    let url = format!("http://{}", s.http);
    let scratch = tempfile::tempdir().unwrap();
    check(scratch.path(), &["--url", &url]);
    let dir = s.stop();
    check(dir.path(), &[]);
}
