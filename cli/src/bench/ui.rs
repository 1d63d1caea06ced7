//! `sextant bench ui`: the latency of every request the web UI's pages
//! make, against a running server (the demo with a day of history is the
//! reference: `sextant demo --backfill 24h`). The requests are the ones
//! `server/ui/js/*.js` sends for Now, the newest incident, the service of
//! its top cause, a trace, Logs and Explore; each runs `--runs` times over
//! one kept-alive connection, as a browser's would.

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};

use super::{print_summary, quantile_ms};
use crate::{CliError, CliResult, Remote};

/// Options of `sextant bench ui`.
#[derive(Args)]
pub struct UiArgs {
    #[command(flatten)]
    remote: Remote,
    /// Runs of each request.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

struct Client {
    http: reqwest::blocking::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// GETs `path?query` and returns the answer's `data`, or the error.
    fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, CliError> {
        let qs = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        let url = format!("{}{path}?{qs}", self.base);
        let mut req = self.http.get(&url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let text = req
            .send()
            .and_then(|r| r.text())
            .map_err(|e| CliError::Usage(format!("cannot reach {url}: {e}")))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| CliError::Usage(format!("{url} answered {text:.200}: {e}")))?;
        if v["status"] != "success" {
            return Err(CliError::Usage(format!("{url}: {}", v["error"])));
        }
        Ok(v["data"].clone())
    }
}

/// One request a page makes: its page, what it is, path and parameters.
struct Request {
    page: &'static str,
    what: String,
    path: String,
    query: Vec<(&'static str, String)>,
}

fn req(page: &'static str, what: &str, path: &str, query: &[(&'static str, String)]) -> Request {
    Request {
        page,
        what: what.to_string(),
        path: path.to_string(),
        query: query.to_vec(),
    }
}

/// The RED queries the Now and Service pages chart (`redQueries` in
/// `now.js`).
fn red(sel: &str, w: &str) -> [(&'static str, String); 3] {
    let all = format!("spans({{kind=\"server\", {sel}}})[{w}]");
    let bad = format!("spans({{kind=\"server\", {sel}, status=\"error\"}})[{w}]");
    [
        ("rate", format!("sum by (service) (rate({all}))")),
        (
            "errors",
            format!(
                "(sum by (service) (rate({bad})) or 0 * sum by (service) (rate({all}))) / sum by \
                 (service) (rate({all}))"
            ),
        ),
        ("p99", format!("quantile by (service) (0.99, {all})")),
    ]
}

/// Runs the benchmark against the server at `--url`.
pub fn run(a: UiArgs) -> CliResult {
    let base = a
        .remote
        .url
        .clone()
        .ok_or_else(|| CliError::Usage("--url of a running server is needed".into()))?;
    let c = Client {
        http: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| CliError::Usage(format!("HTTP client: {e}")))?,
        base: base.trim_end_matches('/').to_string(),
        token: a.remote.token.clone(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let secs = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
    let hour = (secs(now - 3_600_000), secs(now));
    let range = |q: &str| {
        vec![
            ("query", q.to_string()),
            ("start", hour.0.clone()),
            ("end", hour.1.clone()),
            ("step", "30s".to_string()),
        ]
    };
    let w15 = [("window", "15m".to_string())];
    let mut reqs = vec![
        req("now", "calendar", "/api/v1/sextant/calendar", &[]),
        req("now", "diagnose 15m", "/api/v1/sextant/diagnose", &w15),
        req("now", "incidents", "/api/v1/sextant/incidents", &[]),
        req(
            "now",
            "service graph 15m",
            "/api/v1/sextant/service-graph",
            &w15,
        ),
    ];
    let graph = c.get("/api/v1/sextant/service-graph", &w15)?;
    let entries: Vec<String> = graph["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["entry"] == true && n["kind"] == "service")
        .filter_map(|n| n["name"].as_str().map(str::to_string))
        .collect();
    for (name, q) in red(&format!("service=~\"{}\"", entries.join("|")), "1m") {
        reqs.push(req(
            "now",
            &format!("band {name} 1h"),
            "/api/v1/sextant/query_band",
            &range(&q),
        ));
    }
    let incidents = c.get("/api/v1/sextant/incidents", &[])?;
    let mut cause_service = entries.first().cloned().unwrap_or_default();
    if let Some(id) = incidents[0]["id"].as_u64() {
        let inc = c.get(&format!("/api/v1/sextant/incidents/{id}"), &[])?;
        let d = &inc["diagnosis"];
        let win = [
            ("start", secs(d["window"]["start"].as_i64().unwrap_or(now))),
            ("end", secs(d["window"]["end"].as_i64().unwrap_or(now))),
        ];
        reqs.push(req(
            "incident",
            "incident",
            &format!("/api/v1/sextant/incidents/{id}"),
            &[],
        ));
        reqs.push(req(
            "incident",
            "service graph window",
            "/api/v1/sextant/service-graph",
            &win,
        ));
        let top = &d["causes"][0];
        if let Some(s) = top["service"].as_str() {
            cause_service = s.to_string();
        }
        if let Some(q) = top["evidence"]["metric"]["query"].as_str() {
            reqs.push(req(
                "incident",
                "band of the proving metric",
                "/api/v1/sextant/query_band",
                &range(q),
            ));
        }
        if let Some(t) = top["evidence"]["traces"][0]["trace_id"].as_str() {
            reqs.push(req(
                "incident",
                "trace",
                &format!("/api/v1/sextant/traces/{t}"),
                &[],
            ));
            reqs.push(req(
                "trace",
                "trace",
                &format!("/api/v1/sextant/traces/{t}"),
                &[],
            ));
        }
    }
    let sel = format!("service=\"{cause_service}\"");
    let at = [("time", hour.1.clone())];
    let inst = |q: String| {
        let mut v = vec![("query", q)];
        v.extend(at.iter().cloned());
        v
    };
    let spans60 = |extra: &str| format!("spans({{kind=\"server\", {sel}{extra}}})[60m]");
    reqs.push(req(
        "service",
        "service graph 1h",
        "/api/v1/sextant/service-graph",
        &[("start", hour.0.clone()), ("end", hour.1.clone())],
    ));
    for (what, q) in [
        ("operations", format!("count_over_time({})", spans60(""))),
        (
            "operation errors",
            format!("count_over_time({})", spans60(", status=\"error\"")),
        ),
        (
            "operation p99",
            format!("quantile by (name) (0.99, {})", spans60("")),
        ),
        (
            "instances",
            format!(
                "count_over_time(spans({{kind=\"server\", {sel}}} | by(service.instance.id))[60m])"
            ),
        ),
        (
            "failing",
            format!("spans({{{sel}, status=\"error\"}})[60m]"),
        ),
        ("slowest", format!("topk(10, {})", spans60(""))),
    ] {
        reqs.push(req("service", what, "/api/v1/sextant/query", &inst(q)));
    }
    reqs.push(req(
        "service",
        "versions 1h",
        "/api/v1/sextant/query",
        &range(&format!(
            "count_over_time(spans({{{sel}}} | by(service.version))[1m])"
        )),
    ));
    reqs.push(req(
        "service",
        "error logs",
        "/api/v1/sextant/logs",
        &[
            ("match[]", format!("{{{sel}, level=~\"error|fatal\"}}")),
            ("start", hour.0.clone()),
            ("end", hour.1.clone()),
            ("limit", "10".into()),
        ],
    ));
    for (name, q) in red(&sel, "1m") {
        reqs.push(req(
            "service",
            &format!("band {name} 1h"),
            "/api/v1/sextant/query_band",
            &range(&q),
        ));
    }
    reqs.push(req(
        "logs",
        "error lines 1h",
        "/api/v1/sextant/logs",
        &[
            ("match[]", "{level=\"error\"}".into()),
            ("start", hour.0.clone()),
            ("end", hour.1.clone()),
            ("limit", "200".into()),
        ],
    ));
    reqs.push(req(
        "explore",
        "default query 1h",
        "/api/v1/sextant/query",
        &range("sum by (service) (rate(spans({kind=\"server\"})[1m]))"),
    ));

    let mut rows = Vec::new();
    let mut worst_p50: f64 = 0.0;
    for r in &reqs {
        c.get(&r.path, &r.query)?; // warm: the first load of a page
        let mut t = Vec::with_capacity(a.runs);
        for _ in 0..a.runs {
            let t0 = Instant::now();
            c.get(&r.path, &r.query)?;
            t.push(t0.elapsed());
        }
        t.sort();
        let (p50, p99) = (quantile_ms(&t, 0.5), quantile_ms(&t, 0.99));
        worst_p50 = worst_p50.max(p50);
        rows.push(json!({"page": r.page, "request": r.what, "path": r.path,
            "p50_ms": (p50 * 10.0).round() / 10.0, "p99_ms": (p99 * 10.0).round() / 10.0}));
    }
    print_summary(
        &json!({"url": base, "runs": a.runs, "worst_p50_ms": (worst_p50 * 10.0).round() / 10.0, "requests": rows}),
        a.json,
    );
    Ok(())
}
