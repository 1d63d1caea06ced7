//! `sextant query`: the unified query language from the command line,
//! against a running server (`--url`, its HTTP API) or a data directory
//! (the engine, embedded), as a table, JSON or CSV — what `promtool query`
//! and `logcli` users expect. Both ways produce the same JSON answer
//! (`/api/v1/sextant/query`'s), which is then rendered.

use std::path::Path;

use clap::{Args, ValueEnum};
use serde_json::Value as Json;
use sextant_query::{Engine, EngineOptions, When, parse_with};

use crate::{CliError, CliResult};

/// Output formats.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Aligned columns.
    Table,
    /// The API's JSON answer.
    Json,
    /// Comma-separated values with a header line.
    Csv,
}

/// Options of `sextant query`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The query (PromQL, log and span selectors, joins).
    pub query: String,
    /// Where to ask: a running server, or the data directory.
    #[command(flatten)]
    pub remote: crate::Remote,
    /// Evaluation time (RFC 3339 or Unix seconds; default: now).
    #[arg(long)]
    pub time: Option<String>,
    /// Range start (RFC 3339 or Unix seconds); with --end.
    #[arg(long)]
    pub start: Option<String>,
    /// Range end; with --start.
    #[arg(long)]
    pub end: Option<String>,
    /// Range step for a PromQL result (`60s`, `5m`).
    #[arg(long)]
    pub step: Option<String>,
    /// Most records (logs, spans, traces) shown.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// Runs the query and prints its answer.
pub fn run(data_dir: &Path, a: &QueryArgs) -> CliResult {
    let answer = match &a.remote.url {
        Some(url) => remote(url, a)?,
        None => local(data_dir, a)?,
    };
    let v: Json = serde_json::from_str(&answer)
        .map_err(|e| CliError::Usage(format!("the answer is not JSON ({e}): {answer}")))?;
    if v["status"] != "success" {
        return Err(CliError::Failed(
            v["error"]
                .as_str()
                .unwrap_or("the query failed")
                .to_string(),
        ));
    }
    for w in v["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", w.as_str().unwrap_or_default());
    }
    print!("{}", render(&v["data"], a.output));
    Ok(())
}

/// Evaluates on the data directory, answering `/api/v1/sextant/query`'s
/// JSON.
fn local(data_dir: &Path, a: &QueryArgs) -> Result<String, CliError> {
    let when = when(a)?;
    let expr = parse_with(&a.query, when.durations())?;
    let db = crate::open_data_dir(data_dir)?;
    let answer = Engine::new(&db, EngineOptions::default()).run(&expr, when)?;
    Ok(sextant_server::sextant_api::answer_json(answer, a.limit))
}

fn when(a: &QueryArgs) -> Result<When, CliError> {
    Ok(sextant_server::sextant_api::when(
        a.time.as_deref(),
        a.start.as_deref(),
        a.end.as_deref(),
        a.step.as_deref(),
    )?)
}

/// Asks a running server.
fn remote(url: &str, a: &QueryArgs) -> Result<String, CliError> {
    let limit = a.limit.to_string();
    crate::post_form(
        url,
        "/api/v1/sextant/query",
        &[
            ("query", Some(&a.query)),
            ("limit", Some(&limit)),
            ("time", a.time.as_deref()),
            ("start", a.start.as_deref()),
            ("end", a.end.as_deref()),
            ("step", a.step.as_deref()),
        ],
        a.remote.token.as_deref(),
    )
}

/// Renders the `data` of an answer.
pub fn render(data: &Json, out: Output) -> String {
    if out == Output::Json {
        return format!(
            "{}\n",
            serde_json::to_string_pretty(data).unwrap_or_default()
        );
    }
    let (header, rows) = rows(data);
    match out {
        Output::Csv => {
            let line = |cells: &[String]| {
                cells
                    .iter()
                    .map(|c| csv_cell(c))
                    .collect::<Vec<_>>()
                    .join(",")
                    + "\n"
            };
            let mut s = line(&header);
            for r in &rows {
                s += &line(r);
            }
            s
        }
        _ => table(&header, &rows),
    }
}

/// Header and rows of a result, one row per series sample or record.
/// Time and value cells of a float point `[t, "v"]` or a histogram point
/// `[t, {count, sum, buckets}]` (shown by its count, sum and buckets).
fn point(float: Option<&Json>, histogram: Option<&Json>) -> (String, String) {
    match (float, histogram) {
        (Some(p), _) => (
            time_of(&p[0]),
            p[1].as_str()
                .map_or_else(|| p[1].to_string(), str::to_string),
        ),
        (None, Some(p)) => {
            let h = &p[1];
            let buckets: Vec<String> = h["buckets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    format!(
                        "({},{}]:{}",
                        b[1].as_str().unwrap_or(""),
                        b[2].as_str().unwrap_or(""),
                        b[3].as_str().unwrap_or("")
                    )
                })
                .collect();
            (
                time_of(&p[0]),
                format!(
                    "{{count:{} sum:{} {}}}",
                    h["count"].as_str().unwrap_or(""),
                    h["sum"].as_str().unwrap_or(""),
                    buckets.join(" ")
                ),
            )
        }
        (None, None) => (String::new(), String::new()),
    }
}

fn rows(data: &Json) -> (Vec<String>, Vec<Vec<String>>) {
    let h = |cols: &[&str]| cols.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let result = &data["result"];
    let items = result.as_array().cloned().unwrap_or_default();
    let s = |v: &Json| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    match data["resultType"].as_str().unwrap_or_default() {
        "scalar" | "string" => (
            h(&["time", "value"]),
            vec![vec![time_of(&result[0]), s(&result[1])]],
        ),
        "vector" => (
            h(&["series", "time", "value"]),
            items
                .iter()
                .map(|r| {
                    let (t, v) = point(r.get("value"), r.get("histogram"));
                    vec![series(&r["metric"]), t, v]
                })
                .collect(),
        ),
        "matrix" => (
            h(&["series", "time", "value"]),
            items
                .iter()
                .flat_map(|r| {
                    let name = series(&r["metric"]);
                    let list = |k: &str| r[k].as_array().cloned().unwrap_or_default();
                    let mut points: Vec<(Json, bool)> = list("values")
                        .into_iter()
                        .map(|p| (p, false))
                        .chain(list("histograms").into_iter().map(|p| (p, true)))
                        .collect();
                    points.sort_by(|a, b| {
                        let t = |p: &Json| p[0].as_f64().unwrap_or(0.0);
                        t(&a.0).total_cmp(&t(&b.0))
                    });
                    points.into_iter().map(move |(p, hist)| {
                        let (t, v) = if hist {
                            point(None, Some(&p))
                        } else {
                            point(Some(&p), None)
                        };
                        vec![name.clone(), t, v]
                    })
                })
                .collect(),
        ),
        "logs" => (
            h(&["time", "service", "level", "body", "trace_id"]),
            items
                .iter()
                .map(|r| {
                    vec![
                        nanos(&r["timeUnixNano"]),
                        s(&r["service"]),
                        s(&r["severityText"]),
                        s(&r["body"]),
                        s(&r["traceId"]),
                    ]
                })
                .collect(),
        ),
        "spans" => (
            h(&[
                "start",
                "service",
                "name",
                "duration_ms",
                "status",
                "trace_id",
                "span_id",
            ]),
            items.iter().map(span_row).collect(),
        ),
        "traces" => (
            h(&["trace_id", "root", "spans", "start", "duration_ms"]),
            items
                .iter()
                .map(|t| {
                    let spans = t["spans"].as_array().cloned().unwrap_or_default();
                    let root = spans
                        .iter()
                        .find(|sp| sp["parentIndex"].is_null())
                        .or(spans.first());
                    vec![
                        s(&t["traceId"]),
                        root.map_or_else(String::new, |r| {
                            format!("{} {}", s(&r["service"]), s(&r["name"]))
                        }),
                        spans.len().to_string(),
                        root.map_or_else(String::new, |r| nanos(&r["startTimeUnixNano"])),
                        root.map_or_else(String::new, |r| millis(&r["durationNano"])),
                    ]
                })
                .collect(),
        ),
        other => (h(&["result"]), vec![vec![format!("{other}: {result}")]]),
    }
}

fn span_row(r: &Json) -> Vec<String> {
    let s = |v: &Json| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    vec![
        nanos(&r["startTimeUnixNano"]),
        s(&r["service"]),
        s(&r["name"]),
        millis(&r["durationNano"]),
        s(&r["status"]["code"]),
        s(&r["traceId"]),
        s(&r["spanId"]),
    ]
}

/// `name{a="b", ...}` of a Prometheus `metric` object.
fn series(metric: &Json) -> String {
    let Some(m) = metric.as_object() else {
        return String::new();
    };
    let name = m.get("__name__").and_then(Json::as_str).unwrap_or_default();
    let labels: Vec<String> = m
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={}", v))
        .collect();
    format!("{name}{{{}}}", labels.join(", "))
}

/// A Prometheus timestamp (seconds, fractional) as RFC 3339 UTC.
fn time_of(v: &Json) -> String {
    v.as_f64()
        .map_or_else(String::new, |secs| rfc3339((secs * 1e9).round() as i128))
}

/// A decimal string of nanoseconds as RFC 3339 UTC.
fn nanos(v: &Json) -> String {
    v.as_str()
        .and_then(|s| s.parse::<i128>().ok())
        .map_or_else(String::new, rfc3339)
}

fn millis(v: &Json) -> String {
    v.as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or_else(String::new, |ns| format!("{:.3}", ns / 1e6))
}

fn rfc3339(ns: i128) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns).map_or_else(
        |_| ns.to_string(),
        |t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| ns.to_string())
        },
    )
}

fn csv_cell(c: &str) -> String {
    if c.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c.to_string()
    }
}

fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count().min(120));
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            let c: String = c.chars().take(120).collect();
            if i + 1 == cells.len() {
                s += &c;
            } else {
                s += &format!("{c:<w$}  ");
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let upper: Vec<String> = header.iter().map(|h| h.to_uppercase()).collect();
    let mut s = line(&upper);
    for r in rows {
        s += &line(r);
    }
    if rows.is_empty() {
        s += "(no result)\n";
    }
    s
}
