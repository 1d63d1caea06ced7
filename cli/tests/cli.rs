//! The `sextant` binary end to end.

use std::process::Command;

fn sextant(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sextant"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("sextant runs")
}

fn stdout(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A WAL frame (docs/format.md §1) that verifies.
fn valid_frame(typ: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_le_bytes().to_vec();
    f.extend_from_slice(&[typ, 0]);
    let check = (sextant_wal::masked_crc(&[&f]) & 0xffff) as u16;
    f.extend_from_slice(&check.to_le_bytes());
    f.extend_from_slice(&sextant_wal::masked_crc(&[&[typ], payload]).to_le_bytes());
    f.extend_from_slice(payload);
    f
}

#[test]
fn import_stats_and_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = tmp.path().join("in.om");
    let mut text = String::from("# HELP up whether up\n# TYPE up gauge\n");
    for s in 0..3 {
        for i in 0..100 {
            text.push_str(&format!(
                "up{{job=\"j{s}\"}} {i}.5 {}.{:03}\n",
                1_704_067_200 + i * 15,
                s
            ));
        }
    }
    text.push_str("# EOF\n");
    std::fs::write(&file, text).unwrap();
    let out = stdout(&sextant(
        &data,
        &["import", "openmetrics", file.to_str().unwrap()],
    ));
    assert!(out.contains("imported 300 samples"), "{out}");

    let json: serde_json::Value =
        serde_json::from_str(stdout(&sextant(&data, &["stats", "--json", "--verify"])).trim())
            .unwrap();
    assert_eq!(json["series"], 3);
    assert_eq!(json["samples"], 300);
    assert!(json["bytes"].as_u64().unwrap() > 0);
    assert_eq!(json["blocks"].as_array().unwrap().len(), 1);

    // Damage the middle of a WAL segment: opening names the repair command.
    let wal = data.join("wal");
    let seg = std::fs::read_dir(&wal)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&seg).unwrap();
    // A bad frame followed by a valid one is corruption, not a torn tail.
    bytes.extend_from_slice(&[0xAB; 20]);
    bytes.extend_from_slice(&valid_frame(2, b"\x00"));
    std::fs::write(&seg, &bytes).unwrap();
    let o = sextant(&data, &["stats"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("WAL corruption") && err.contains("sextant repair"),
        "{err}"
    );
    let out = stdout(&sextant(&data, &["repair"]));
    assert!(
        out.contains("kept") && out.contains("dropped 20 damaged byte(s)"),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(stdout(&sextant(&data, &["stats", "--json"])).trim()).unwrap();
    assert_eq!(json["samples"], 300, "data in blocks survives the repair");
}

#[test]
fn bad_input_lines_name_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.om");
    std::fs::write(
        &file,
        "up{job=\"a\"} 1 1700000000\nup{job=\"a\" 2 1700000015\n",
    )
    .unwrap();
    let o = sextant(
        &tmp.path().join("data"),
        &["import", "openmetrics", file.to_str().unwrap()],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.om:2") && err.contains("label"), "{err}");
}

#[test]
fn bench_write_json_reports_throughput() {
    let tmp = tempfile::tempdir().unwrap();
    let out = stdout(&sextant(
        tmp.path(),
        &[
            "bench",
            "write",
            "--series",
            "200",
            "--scrapes",
            "5",
            "--batch",
            "100",
            "--sync",
            "never",
            "--json",
        ],
    ));
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(json["samples"], 1000);
    assert!(json["samples_per_sec"].as_f64().unwrap() > 0.0);
}

/// `sextant promql-test` exits non-zero when an eval fails, so scripts and
/// CI can rely on its status (issue 19, finding 8).
#[test]
fn promql_test_exit_status_follows_the_evals() {
    let tmp = tempfile::tempdir().unwrap();
    let script = |name: &str, want: &str| {
        let p = tmp.path().join(name);
        std::fs::write(
            &p,
            format!("load 1m\n  m 1 2 3\n\neval instant at 2m m\n  m {want}\n"),
        )
        .unwrap();
        p
    };
    let (good, bad) = (script("good.test", "3"), script("bad.test", "4"));
    let run = |p: &std::path::Path| sextant(tmp.path(), &["promql-test", p.to_str().unwrap()]);
    let ok = run(&good);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("1 passed, 0 failed"));
    let failed = run(&bad);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("1 eval(s) failed"));
}
