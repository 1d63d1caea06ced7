//! The diagnosis through a real `sextant serve` fed over OTLP/HTTP: a
//! scenario from the simulator (an estate instrumented by the OpenTelemetry
//! conventions) whose fault began ten minutes ago, with the history the
//! calendar compares it with. The continuous diagnosis opens an incident
//! naming the fault and posts it to the webhook; the HTTP API and
//! `sextant diagnose` name it too; bad windows get a 400; incidents
//! survive a restart.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use common::{Server, eventually, fault_now, feed, now_ms};
use sextant_demo::scenario::FaultKind;

/// A webhook receiver: every request body, in order.
fn receiver() -> (String, mpsc::Receiver<serde_json::Value>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { return };
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            // Read the head, then as many body bytes as it announces.
            let body = loop {
                let Ok(n) = c.read(&mut chunk) else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some(body[..len].to_string());
                    }
                }
            };
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
            if let Some(b) = body
                && let Ok(v) = serde_json::from_str(&b)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    (url, rx)
}

#[test]
fn a_fault_is_diagnosed_continuously_notified_and_kept() {
    let (hook, hooks) = receiver();
    let s = Server::start(&["--diagnose-every", "2s", "--alert-webhook", &hook]);
    let sc = fault_now(FaultKind::CertFailure);
    let want = sc.expected[0].name.clone();
    feed(&s, &sc);

    // The continuous diagnosis opens an incident naming it.
    let incident = eventually("an open incident", || {
        let (_, v) = s.get_json("/api/v1/sextant/incidents");
        v["data"]
            .as_array()?
            .iter()
            .find(|i| i["status"] == "open" && i["top_cause"]["name"] == want.as_str())
            .cloned()
    });
    let id = incident["id"].as_u64().unwrap();
    let hook_body = hooks
        .recv_timeout(Duration::from_secs(60))
        .expect("a webhook");
    assert_eq!(hook_body["version"], "4");
    assert_eq!(hook_body["status"], "firing");
    assert_eq!(hook_body["alerts"][0]["labels"]["cause"], want.as_str());
    assert_eq!(
        hook_body["alerts"][0]["labels"]["alertname"],
        "SextantIncident"
    );

    // The API over the same window.
    let (status, v) = s.get_json("/api/v1/sextant/diagnose?window=15m");
    assert_eq!(status, 200, "{v}");
    let d = &v["data"];
    assert_eq!(d["incident"], true, "{d}");
    let top = &d["causes"][0];
    assert_eq!(top["name"], want.as_str(), "{d}");
    assert_eq!(top["kind"], "service");
    assert!(top["explanation"].as_str().unwrap().contains(&want));
    assert!(top["evidence"]["metric"]["query"].as_str().is_some());
    assert!(
        top["evidence"]["log"]["template"]
            .as_str()
            .unwrap()
            .contains("certificate"),
        "{top}"
    );
    assert!(!top["evidence"]["traces"].as_array().unwrap().is_empty());
    let (status, one) = s.get_json(&format!("/api/v1/sextant/incidents/{id}"));
    assert_eq!(status, 200);
    assert_eq!(one["data"]["diagnosis"]["causes"][0]["name"], want.as_str());

    // gRPC: the same JSON.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let json = rt.block_on(async {
        let ch = tonic::transport::Channel::from_shared(format!("http://{}", s.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut c = sextant_server::query_grpc::pb::query_client::QueryClient::new(ch);
        let now = now_ms();
        let req = sextant_server::query_grpc::pb::DiagnoseRequest {
            start_ms: now - 15 * 60_000,
            end_ms: now,
        };
        let bad = sextant_server::query_grpc::pb::DiagnoseRequest {
            start_ms: now,
            end_ms: now - 1,
        };
        let err = c.diagnose(bad).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
        c.diagnose(req).await.unwrap().into_inner().json
    });
    drop(rt);
    let g: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(g["causes"][0]["name"], want.as_str());

    // The command line, against the server.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["diagnose", "--url", &s.url(""), "--window", "15m"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with("INCIDENT") && text.contains(&format!("1. {want} (service)")),
        "{text}"
    );

    // Bad windows: a 400 that says what is wrong.
    for (q, says) in [
        ("start=200&end=100", "before it starts"),
        ("start=0&end=100000", "at most 6.0h"),
        ("start=0&end=30", "at least one minute"),
        ("time=soon", "time"),
        ("window=forever", "window"),
        ("end=100", "both start and end"),
    ] {
        let (status, v) = s.get_json(&format!("/api/v1/sextant/diagnose?{q}"));
        assert_eq!(status, 400, "{q}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{q}: {v}");
    }

    // Incidents survive a restart.
    let dir = s.stop();
    let s = Server::start_in(dir, &["--diagnose-every", "off"]);
    let (_, v) = s.get_json("/api/v1/sextant/incidents");
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"].as_u64() == Some(id)),
        "{v}"
    );
}
