//! One diagnosis: read the window and its comparable windows, detect,
//! localise, gather the evidence.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use rustc_hash::FxHashMap;
use sextant_calendar::Calendar;
use sextant_storage::{Db, LogSearch, MatchOp, Matcher};

use crate::error::{Error, Result};
use crate::evidence::{
    Logs, change_evidence, explanation, log_evidence, metric_evidence, speakers, trace_evidence,
};
use crate::profile::{Key, Profile};
use crate::rank::{Ranked, Suspect, rank};
use crate::read::{MAX_SPANS, check_window, spans};
use crate::report::{Affected, Cause, DiagnoseRequest, Diagnosis, Evidence, Window};

/// The longest window one diagnosis reads.
pub const MAX_DIAGNOSE_WINDOW_MS: i64 = 6 * 3_600_000;
/// Comparable windows the baseline is read from.
pub const BASELINE_WINDOWS: usize = 5;
/// How far back comparable windows are looked for, days (month- and
/// quarter-ends look further: see the calendar).
pub const LOOKBACK_DAYS: i64 = 35;
/// The stretch before the window read as the baseline when no comparable
/// window holds data.
pub const BEFORE_MS: i64 = 3_600_000;
/// Warn-or-worse log lines read per window.
const MAX_LOG_LINES: usize = 50_000;

fn warn_logs(db: &Db, start: i64, end: i64) -> Result<Vec<sextant_storage::LogRecord>> {
    let level = Matcher::new(MatchOp::Regex, "level", "warn|error|fatal")
        .map_err(|e| Error::Request(e.to_string()))?;
    Ok(db.search_logs(&LogSearch {
        matchers: vec![level],
        start_ns: start.saturating_mul(1_000_000),
        end_ns: end.saturating_mul(1_000_000).saturating_sub(1),
        limit: MAX_LOG_LINES,
        ..LogSearch::default()
    })?)
}

/// The shortest path from `from` down the call graph to `to`, as
/// `[to, …, from]` (node names).
fn path(w: &Profile, from: &str, to: &str) -> Option<Vec<String>> {
    let mut next: FxHashMap<&str, Vec<&str>> = FxHashMap::default();
    for (a, b) in &w.edges {
        next.entry(a.as_str()).or_default().push(b.as_str());
    }
    for v in next.values_mut() {
        v.sort_unstable();
    }
    let mut prev: FxHashMap<&str, &str> = FxHashMap::default();
    let mut queue = VecDeque::from([from]);
    while let Some(n) = queue.pop_front() {
        if n == to {
            let mut p = vec![to.to_string()];
            let mut cur = to;
            while let Some(&b) = prev.get(cur) {
                p.push(b.to_string());
                cur = b;
            }
            return Some(p);
        }
        for &m in next.get(n).map_or(&[][..], Vec::as_slice) {
            if m != from && !prev.contains_key(m) {
                prev.insert(m, n);
                queue.push_back(m);
            }
        }
    }
    None
}

/// Diagnoses `req`'s window of `db` in the market time of `cal`.
pub fn diagnose(db: &Db, cal: &Calendar, req: &DiagnoseRequest) -> Result<Diagnosis> {
    let t0 = Instant::now();
    let (start, end) = (req.start, req.end);
    check_window(start, end, MAX_DIAGNOSE_WINDOW_MS)?;
    if end - start < 60_000 {
        return Err(Error::Request(format!(
            "the window is {} s long; diagnosis needs at least one minute",
            (end - start) / 1000
        )));
    }
    let len = end - start;
    let mut lacking = Vec::new();
    let (window_spans, truncated) = spans(db, start, end)?;
    if truncated {
        lacking.push(format!(
            "the window holds more than {MAX_SPANS} spans; the newest were read"
        ));
    }
    let w = Profile::build(&window_spans, true);
    drop(window_spans);
    let mut bases = Vec::new();
    let mut baseline_starts = Vec::new();
    for c in cal.comparable(start, LOOKBACK_DAYS, BASELINE_WINDOWS) {
        let (s, _) = spans(db, c, c + len)?;
        if !s.is_empty() {
            bases.push(Profile::build(&s, false));
            baseline_starts.push(c);
        }
    }
    if w.span_count == 0 {
        return from_metrics(db, cal, req, lacking, t0);
    }
    if bases.is_empty() && w.span_count > 0 {
        lacking.push(format!(
            "no spans in the comparable windows of the last {LOOKBACK_DAYS} days: compared with \
             the hour before the window instead, which knows nothing of the time of day"
        ));
        let (pre_spans, _) = spans(db, start - BEFORE_MS, start)?;
        if !pre_spans.is_empty() {
            bases.push(Profile::build(&pre_spans, false));
            baseline_starts.push(start - BEFORE_MS);
        }
    }
    let mut merged = Profile::default();
    for b in &bases {
        merged.merge(b);
    }
    let found = crate::detect::symptoms(&w, &bases, &merged);
    let incident = !found.symptoms.is_empty();
    let mut causes = Vec::new();
    let mut affected = Vec::new();
    if incident {
        let ranked = rank(&w, &merged, &found);
        let logs = {
            let window = warn_logs(db, start, end)?;
            let mut baseline = Vec::new();
            for &c in &baseline_starts {
                baseline.extend(warn_logs(db, c, c + len)?);
            }
            Logs {
                window,
                baseline,
                baseline_windows: baseline_starts.len() as f64,
            }
        };
        let entries: Vec<&str> = found
            .symptoms
            .iter()
            .filter(|s| s.indicator != "consumer_lag")
            .map(|s| s.node.as_str())
            .collect();
        for (i, r) in ranked.iter().take(req.max_causes).enumerate() {
            let cause = describe(cal, &w, &merged, &logs, r, &entries);
            if i == 0 {
                for e in &entries {
                    let target = target_node(&r.suspect);
                    let p = path(&w, e, &target);
                    if !affected.iter().any(|a: &Affected| a.service == *e) {
                        affected.push(Affected {
                            service: e.to_string(),
                            path: p.unwrap_or_else(|| vec![target.clone(), e.to_string()]),
                        });
                    }
                }
            }
            causes.push(cause);
        }
    }
    Ok(Diagnosis {
        incident,
        window: Window {
            start,
            end,
            day_kind: format!("{:?}", cal.moment(start).day.kind()).to_lowercase(),
            baseline_starts,
            spans: w.span_count,
        },
        symptoms: found.symptoms,
        causes,
        affected,
        lacking,
        took_ms: t0.elapsed().as_millis() as u64,
    })
}

/// The diagnosis of a window without spans, from each service's RED
/// metrics (see `metrics.rs`).
fn from_metrics(
    db: &Db,
    cal: &Calendar,
    req: &DiagnoseRequest,
    mut lacking: Vec<String>,
    t0: Instant,
) -> Result<Diagnosis> {
    let (start, end) = (req.start, req.end);
    let len = end - start;
    let now = crate::metrics::red(db, end, len)?;
    let mut bases = Vec::new();
    let mut baseline_starts = Vec::new();
    if now.is_empty() {
        lacking.push(
            "no spans and no http.server.request.duration metrics in the window: nothing to \
             diagnose from"
                .into(),
        );
    } else {
        lacking.push(
            "no spans in the window: services ranked by their own RED metrics \
             (http.server.request.duration) against their normal, without the call graph, so a \
             caller failing because of its callee may rank above it; no traces as evidence"
                .into(),
        );
        for c in cal.comparable(start, LOOKBACK_DAYS, BASELINE_WINDOWS) {
            let b = crate::metrics::red(db, c + len, len)?;
            if !b.is_empty() {
                bases.push(b);
                baseline_starts.push(c);
            }
        }
    }
    let anomalies = crate::metrics::anomalies(&now, &bases);
    let total: f64 = anomalies.iter().map(|a| a.score).sum();
    let logs = if anomalies.is_empty() {
        None
    } else {
        let mut baseline = Vec::new();
        for &c in &baseline_starts {
            baseline.extend(warn_logs(db, c, c + len)?);
        }
        Some(Logs {
            window: warn_logs(db, start, end)?,
            baseline,
            baseline_windows: baseline_starts.len() as f64,
        })
    };
    let causes = anomalies
        .iter()
        .take(req.max_causes)
        .map(|a| {
            let score = (a.score / total * 1000.0).round() / 1000.0;
            let log = logs.as_ref().and_then(|l| {
                log_evidence(l, std::slice::from_ref(&a.service), None, &a.service, false)
            });
            let what = a
                .symptoms
                .iter()
                .map(|s| format!("{} {:.3} → {:.3}", s.indicator, s.baseline, s.observed))
                .collect::<Vec<_>>()
                .join(", ");
            let mut explanation = format!("{} (service): {what} against its normal", a.service);
            if let Some(l) = &log {
                explanation.push_str(&format!(
                    "; '{}' ×{}, {} in the baseline",
                    l.template, l.count, l.baseline_count
                ));
            }
            explanation.push('.');
            Cause {
                name: a.service.clone(),
                kind: "service".into(),
                service: a.service.clone(),
                instance: None,
                callers: Vec::new(),
                score,
                explanation,
                evidence: Evidence {
                    metric: Some(a.metric.clone()),
                    log,
                    traces: Vec::new(),
                    change: None,
                },
            }
        })
        .collect();
    Ok(Diagnosis {
        incident: !anomalies.is_empty(),
        window: Window {
            start,
            end,
            day_kind: format!("{:?}", cal.moment(start).day.kind()).to_lowercase(),
            baseline_starts,
            spans: 0,
        },
        symptoms: anomalies.iter().flat_map(|a| a.symptoms.clone()).collect(),
        causes,
        affected: Vec::new(),
        lacking,
        took_ms: t0.elapsed().as_millis() as u64,
    })
}

/// The graph node a suspect sits at.
fn target_node(s: &Suspect) -> String {
    match s {
        Suspect::Key(Key::Node(n)) => n.clone(),
        Suspect::Key(Key::Link(_, b)) => b.clone(),
        Suspect::Instance(svc, _) => svc.clone(),
    }
}

/// Callers of a node by calls made, busiest first.
fn callers_of(w: &Profile, node: &str) -> Vec<String> {
    let mut c: BTreeMap<&str, u64> = BTreeMap::new();
    for ((a, b), (calls, _)) in &w.unanswered {
        if b == node && a != node {
            *c.entry(a.as_str()).or_default() += calls;
        }
    }
    let mut v: Vec<(&str, u64)> = c.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter().map(|(s, _)| s.to_string()).collect()
}

fn describe(
    cal: &Calendar,
    w: &Profile,
    base: &Profile,
    logs: &Logs,
    r: &Ranked,
    entries: &[&str],
) -> Cause {
    let (name, kind, service, instance, callers) = match &r.suspect {
        Suspect::Key(Key::Node(n)) => {
            let callers = callers_of(w, n);
            if w.serving.contains(n) {
                (n.clone(), "service", n.clone(), None, callers)
            } else {
                let kind = w.peers.get(n).map_or("external", |p| p.kind);
                let owner = callers.first().cloned().unwrap_or_default();
                (n.clone(), kind, owner, None, callers)
            }
        }
        Suspect::Key(Key::Link(a, b)) => (
            format!("{a}->{b}"),
            "link",
            a.clone(),
            None,
            vec![a.clone()],
        ),
        Suspect::Instance(s, i) => (
            i.clone(),
            "instance",
            s.clone(),
            Some(i.clone()),
            callers_of(w, s),
        ),
    };
    let subject = match &r.suspect {
        Suspect::Key(Key::Node(n)) => n.as_str(),
        Suspect::Key(Key::Link(_, b)) => b.as_str(),
        Suspect::Instance(_, i) => i.as_str(),
    };
    let who = speakers(&r.suspect, &callers);
    let evidence = Evidence {
        metric: Some(metric_evidence(w, base, r)),
        log: log_evidence(
            logs,
            &who,
            instance.as_deref(),
            subject,
            r.latency_share >= r.error_share,
        ),
        traces: trace_evidence(w, r),
        change: change_evidence(r),
    };
    let target = target_node(&r.suspect);
    let mut up: Vec<String> = Vec::new();
    for e in entries {
        if let Some(p) = path(w, e, &target) {
            for n in p.into_iter().skip(1) {
                if n != target && !up.contains(&n) {
                    up.push(n);
                }
            }
        }
    }
    let blamed_share = (w.errors > 0)
        .then(|| w.blamed.get(&r.suspect.key()).copied().unwrap_or(0) as f64 / w.errors as f64);
    let explanation = explanation(cal, &name, kind, &evidence, r, &up, blamed_share);
    Cause {
        name,
        kind: kind.into(),
        service,
        instance,
        callers,
        score: (r.score * 1000.0).round() / 1000.0,
        explanation,
        evidence,
    }
}
