//! `sextant diagnose`: the diagnosis of a window from the command line,
//! against a running server (`--url`) or a data directory, as a report a
//! person reads at 2 AM or as the API's JSON.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::Value as Json;
use sextant_diagnose::{Calendar, DiagnoseRequest};

use crate::{CliError, CliResult};

/// Options of `sextant diagnose`.
#[derive(Args, Debug)]
pub struct DiagnoseArgs {
    /// Window start (RFC 3339 or Unix seconds); with --end.
    #[arg(long)]
    pub start: Option<String>,
    /// Window end; with --start.
    #[arg(long)]
    pub end: Option<String>,
    /// Window end when --start/--end are not given (default: now).
    #[arg(long)]
    pub time: Option<String>,
    /// Window length before --time (default: 15m).
    #[arg(long)]
    pub window: Option<String>,
    /// Where to ask: a running server, or the data directory.
    #[command(flatten)]
    pub remote: crate::Remote,
    /// Exchange calendar file for a data directory (default: the NYSE).
    #[arg(long)]
    pub calendar: Option<PathBuf>,
    /// Print the API's JSON instead of the report.
    #[arg(long)]
    pub json: bool,
}

/// Diagnoses the window and prints the answer.
pub fn run(data_dir: &Path, a: &DiagnoseArgs) -> CliResult {
    let answer = match &a.remote.url {
        Some(url) => crate::post_form(
            url,
            "/api/v1/sextant/diagnose",
            &[
                ("start", a.start.as_deref()),
                ("end", a.end.as_deref()),
                ("time", a.time.as_deref()),
                ("window", a.window.as_deref()),
            ],
            a.remote.token.as_deref(),
        )?,
        None => local(data_dir, a)?,
    };
    let v: Json = serde_json::from_str(&answer)
        .map_err(|e| CliError::Usage(format!("the answer is not JSON ({e}): {answer}")))?;
    if v["status"] != "success" {
        return Err(CliError::Failed(
            v["error"]
                .as_str()
                .unwrap_or("the diagnosis failed")
                .to_string(),
        ));
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&v["data"]).unwrap_or_default()
        );
    } else {
        print!("{}", report(&v["data"]));
    }
    Ok(())
}

fn local(data_dir: &Path, a: &DiagnoseArgs) -> Result<String, CliError> {
    let (start, end) = sextant_server::diagnose_api::window(
        a.start.as_deref(),
        a.end.as_deref(),
        a.time.as_deref(),
        a.window.as_deref(),
    )?;
    let cal = match &a.calendar {
        None => Calendar::nyse(),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| CliError::Usage(format!("--calendar {}: {e}", p.display())))?;
            Calendar::from_toml(&text)
                .map_err(|e| CliError::Usage(format!("--calendar {}: {e}", p.display())))?
        }
    };
    let db = crate::open_data_dir(data_dir)?;
    let d = sextant_diagnose::diagnose(&db, &cal, &DiagnoseRequest::new(start, end))
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let data = serde_json::to_string(&d).map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(format!("{{\"status\":\"success\",\"data\":{data}}}"))
}

/// The diagnosis as a short report.
pub fn report(d: &Json) -> String {
    let mut out = String::new();
    let incident = d["incident"].as_bool().unwrap_or(false);
    out.push_str(if incident {
        "INCIDENT\n"
    } else {
        "No incident: every entry point is within its normal for this time.\n"
    });
    for s in d["symptoms"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  symptom: {} {} {} (normal {})\n",
            s["node"].as_str().unwrap_or(""),
            s["indicator"].as_str().unwrap_or(""),
            num(&s["observed"]),
            num(&s["baseline"]),
        ));
    }
    for (i, c) in d["causes"].as_array().into_iter().flatten().enumerate() {
        out.push_str(&format!(
            "\n{}. {} ({}) score {}\n   {}\n",
            i + 1,
            c["name"].as_str().unwrap_or(""),
            c["kind"].as_str().unwrap_or(""),
            num(&c["score"]),
            c["explanation"].as_str().unwrap_or(""),
        ));
        let ev = &c["evidence"];
        if let Some(q) = ev["metric"]["query"].as_str() {
            out.push_str(&format!("   metric: {q}\n"));
        }
        if let Some(t) = ev["log"]["template"].as_str() {
            out.push_str(&format!("   log: {t}\n"));
        }
        for t in ev["traces"].as_array().into_iter().flatten().take(1) {
            out.push_str(&format!(
                "   trace: {} (span {})\n",
                t["trace_id"].as_str().unwrap_or(""),
                t["span_id"].as_str().unwrap_or("")
            ));
        }
        if let Some(ch) = ev["change"]["description"].as_str() {
            out.push_str(&format!("   change: {ch}\n"));
        }
    }
    for l in d["lacking"].as_array().into_iter().flatten() {
        out.push_str(&format!("note: {}\n", l.as_str().unwrap_or("")));
    }
    out.push_str(&format!("({} ms)\n", num(&d["took_ms"])));
    out
}

fn num(v: &Json) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 => format!("{x:.0}"),
        Some(x) if x.abs() < 1.0 => format!("{x:.3}"),
        Some(x) => format!("{x:.1}"),
        None => "-".into(),
    }
}
