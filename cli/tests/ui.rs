//! The web UI is served by the binary itself: the page, its script and
//! its style, with their types, under the same listener as the API. (The
//! browser tests of issue 22 are still to come; these check the serving.)

mod common;

use common::{Server, client};

#[test]
fn the_page_and_its_assets_are_served_from_the_binary() {
    let s = Server::start(&["--diagnose-every", "off"]);
    for (path, kind, holds) in [
        ("/", "text/html", "<title>Sextant</title>"),
        ("/ui/app.js", "text/javascript", "/api/v1/sextant/diagnose"),
        ("/ui/app.css", "text/css", "prefers-color-scheme: dark"),
    ] {
        let r = client().get(s.url(path)).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        assert!(r.text().unwrap().contains(holds), "{path}");
    }
    let r = client().get(s.url("/ui/missing.js")).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

/// Headless Chromium (Debian's `chromium`) on `url`: the DOM after the
/// page's script ran, and what the browser logged (console included).
fn browse(url: &str, shot: &str) -> (String, String) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let base = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1280,1000",
        "--virtual-time-budget=15000",
    ];
    let shot_arg = format!("--screenshot={}", dir.join(format!("{shot}.png")).display());
    let _ = std::process::Command::new("chromium")
        .args(base)
        .arg(&shot_arg)
        .arg(url)
        .output()
        .unwrap();
    let out = std::process::Command::new("chromium")
        .args(base)
        .args(["--enable-logging=stderr", "--v=0", "--dump-dom", url])
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The pages in a real browser against a server fed an injected fault:
/// Now lists the incident and draws the map; the incident page names the
/// fault with its metric, log template and traces; the trace page shows the
/// failing span in red; Explore renders each result type and shows a parse
/// error in place; Logs lists lines; the console shows no error.
/// Screenshots go to `target/tmp/ui-screenshots/`.
#[test]
fn the_pages_work_in_a_browser() {
    if !common::have("chromium", "chromium") {
        return;
    }
    let s = Server::start(&["--diagnose-every", "1s"]);
    let sc = common::fault_now(sextant_demo::scenario::FaultKind::CertFailure);
    let want = sc.expected[0].name.clone();
    common::feed(&s, &sc);
    let id = common::eventually("an incident", || {
        let (_, v) = s.get_json("/api/v1/sextant/incidents");
        v["data"].as_array()?.first()?["id"].as_u64()
    });
    let page = |route: &str, shot: &str| {
        let (dom, log) = browse(&s.url(&format!("/#{route}")), shot);
        for line in log.lines() {
            assert!(
                !(line.contains("CONSOLE")
                    && (line.contains("Uncaught") || line.contains("Error"))),
                "{route}: {line}"
            );
        }
        dom
    };

    let now = page("/", "now");
    assert!(now.contains(&format!("Likely cause: {want}")), "{now}");
    assert!(now.contains(&format!("href=\"#/incident/{id}\"")));
    assert!(now.contains("aria-label=\"service map\""));

    let inc = page(&format!("/incident/{id}"), "incident");
    assert!(inc.contains(&format!("1. {want}")), "{inc}");
    assert!(inc.contains("Metric") && inc.contains("Query: "), "{inc}");
    assert!(
        inc.contains("Log template") && inc.contains("certificate"),
        "{inc}"
    );
    let trace_id = inc
        .split("href=\"#/trace/")
        .nth(1)
        .and_then(|r| r.split(['?', '"']).next())
        .expect("a trace link")
        .to_string();

    let trace = page(&format!("/trace/{trace_id}"), "trace");
    assert!(trace.contains(&format!("Trace {trace_id}")), "{trace}");
    assert!(
        trace.contains("bar error"),
        "the failing span is red: {trace}"
    );

    let enc = |q: &str| -> String { form_urlencoded::byte_serialize(q.as_bytes()).collect() };
    for (q, holds) in [
        (
            r#"sum by (service) (rate(spans({kind="server"})[5m]))"#,
            "<th>value</th>",
        ),
        (r#"spans({status="error"})[15m]"#, "<th>duration</th>"),
        (r#"logs({level="error"})[15m]"#, "<th>message</th>"),
    ] {
        let dom = page(&format!("/explore?q={}", enc(q)), "explore");
        assert!(dom.contains(holds), "{q}: {dom}");
    }
    let bad = page(
        &format!("/explore?q={}", enc("sum(rate(x[5m]")),
        "explore-error",
    );
    assert!(
        bad.contains("error-box") && bad.contains("parse error"),
        "{bad}"
    );

    let logs = page("/logs?level=error", "logs");
    assert!(
        logs.contains("<th>message</th>") && logs.contains(&want),
        "{logs}"
    );
}
