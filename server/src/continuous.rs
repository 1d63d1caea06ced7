//! The continuous diagnosis: every `--diagnose-every`, the last
//! [`WINDOW_MS`] are diagnosed, the incident list follows the answer, and
//! each change (opened, top cause changed, resolved) is posted to the
//! `--alert-webhook`, in Alertmanager's webhook format.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sextant_diagnose::{Change, DiagnoseRequest, Incident};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::{ApiError, ApiResult, Kind};
use super::prom_api::now_ms;
use super::state::State;

/// The window each continuous diagnosis looks at.
pub const WINDOW_MS: i64 = 15 * 60_000;
/// Attempts to deliver one notification.
const ATTEMPTS: u32 = 3;

/// How soon a check that read no span is followed by another while the
/// server is young, and for how long after start: a store just started
/// (the demo's backfill, a collector's first batches) gets its first real
/// diagnosis seconds after its data arrives, not a period later.
const EARLY_RETRY: Duration = Duration::from_secs(5);
const EARLY_FOR: Duration = Duration::from_secs(600);

/// The wait before the next check: `every`, or [`EARLY_RETRY`] when the
/// last check read no span within [`EARLY_FOR`] of start (a metrics-only
/// estate settles to `every` after that).
fn next_wait(every: Duration, spans_read: bool, since_start: Duration) -> Duration {
    match !spans_read && since_start < EARLY_FOR {
        true => every.min(EARLY_RETRY),
        false => every,
    }
}

/// Runs the continuous diagnosis until `stopped` completes.
pub async fn run(st: Arc<State>, every: Duration, stopped: impl std::future::Future<Output = ()>) {
    tokio::pin!(stopped);
    let started = tokio::time::Instant::now();
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let now = now_ms();
        let res = st
            .query(move |st| {
                let d = sextant_diagnose::diagnose(
                    &st.db,
                    &st.cfg.calendar,
                    &DiagnoseRequest::new(now - WINDOW_MS, now),
                )?;
                let spans = d.window.spans;
                let changes = st.incidents.lock().observe(&d)?;
                let notes: Vec<(Change, Incident)> = changes
                    .into_iter()
                    .filter_map(|c| {
                        let id = match c {
                            Change::Opened(i) | Change::CauseChanged(i) | Change::Resolved(i) => i,
                        };
                        st.incidents.lock().get(id).cloned().map(|inc| (c, inc))
                    })
                    .collect();
                Ok((notes, spans))
            })
            .await;
        let spans = match res {
            Ok((notes, spans)) => {
                for (change, inc) in notes {
                    tracing::info!(id = inc.id, ?change, "incident");
                    if let Some(url) = &st.cfg.alert_webhook
                        && let Err(e) =
                            notify(url, &st.cfg.http_addr.to_string(), change, &inc).await
                    {
                        tracing::warn!(url, error = %e, "alert webhook failed");
                    }
                }
                spans
            }
            Err(e) => {
                tracing::warn!(error = %e, "continuous diagnosis failed");
                0
            }
        };
        wait = next_wait(every, spans > 0, started.elapsed());
    }
}

/// The Alertmanager webhook payload (version 4) for one incident change.
pub fn payload(change: Change, inc: &Incident, external_url: &str) -> serde_json::Value {
    let firing = !matches!(change, Change::Resolved(_));
    let status = if firing { "firing" } else { "resolved" };
    let cause = inc.top_cause.as_ref();
    let labels = json!({
        "alertname": "SextantIncident",
        "incident": inc.id.to_string(),
        "cause": cause.map_or("", |c| c.name.as_str()),
        "cause_kind": cause.map_or("", |c| c.kind.as_str()),
        "service": cause.map_or("", |c| c.service.as_str()),
        "severity": "critical",
    });
    let summary = match cause {
        Some(c) => format!("Incident {}: likely cause {} ({})", inc.id, c.name, c.kind),
        None => format!("Incident {}", inc.id),
    };
    let annotations = json!({
        "summary": summary,
        "description": cause.map_or("", |c| c.explanation.as_str()),
    });
    let rfc3339 = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default()
    };
    let url = format!("http://{external_url}/#/incidents/{}", inc.id);
    json!({
        "version": "4",
        "groupKey": format!("sextant-incident-{}", inc.id),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "sextant",
        "groupLabels": {"alertname": "SextantIncident"},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": format!("http://{external_url}"),
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": rfc3339(inc.opened),
            "endsAt": inc.resolved.map_or("0001-01-01T00:00:00Z".to_string(), rfc3339),
            "generatorURL": url,
            "fingerprint": format!("{:016x}", inc.id),
        }],
    })
}

/// Posts the payload of `change` to `url` (http://host[:port]/path),
/// trying [`ATTEMPTS`] times.
async fn notify(url: &str, external: &str, change: Change, inc: &Incident) -> ApiResult<()> {
    let body = payload(change, inc, external).to_string();
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        match tokio::time::timeout(Duration::from_secs(10), post(url, &body)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => last = Some(e),
            Err(_) => last = Some(ApiError::new(Kind::Timeout, "no answer in 10 s")),
        }
        tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
    }
    Err(last.unwrap_or_else(|| ApiError::new(Kind::Internal, "not sent")))
}

/// One HTTP/1.1 POST of JSON; a 2xx answer is success.
async fn post(url: &str, body: &str) -> ApiResult<()> {
    let err = |m: String| ApiError::new(Kind::Unavailable, m);
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| err(format!("{url}: not an http:// URL")))?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let addr = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let mut s = TcpStream::connect(&addr)
        .await
        .map_err(|e| err(format!("{addr}: {e}")))?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nUser-Agent: sextant\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| err(format!("{addr}: {e}")))?;
    let mut head = vec![0u8; 64];
    let n = s
        .read(&mut head)
        .await
        .map_err(|e| err(format!("{addr}: {e}")))?;
    let line = String::from_utf8_lossy(&head[..n]);
    let code = line.split_whitespace().nth(1).unwrap_or("");
    if code.starts_with('2') {
        Ok(())
    } else {
        Err(err(format!(
            "{url} answered {:?}",
            line.lines().next().unwrap_or("")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_young_store_without_spans_is_checked_again_soon() {
        let minute = Duration::from_secs(60);
        assert_eq!(next_wait(minute, false, Duration::ZERO), EARLY_RETRY);
        assert_eq!(next_wait(minute, true, Duration::ZERO), minute);
        // After the first minutes, a store without spans (metrics only)
        // is checked at the period.
        assert_eq!(next_wait(minute, false, EARLY_FOR), minute);
        // A period shorter than the early retry is kept.
        let short = Duration::from_secs(2);
        assert_eq!(next_wait(short, false, Duration::ZERO), short);
    }
}
