//! The evidence for a cause: the metric that moved (with a query to see
//! it and when it moved), the log template that is new or surging there,
//! example traces through it, the change, and one paragraph saying it.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;

use sextant_calendar::Calendar;
use sextant_storage::{LogRecord, hex};

use crate::profile::{INSTANCE_KEYS, Key, Profile, instance_of, quoted};
use crate::rank::{Ranked, Suspect};
use crate::report::{
    ChangeEvidence, Evidence, LogEvidence, LogExample, MetricEvidence, TraceEvidence,
};
use crate::templates::{Miner, MinerConfig};

#[derive(Default)]
struct Counts<'a> {
    lines: u64,
    first: u64,
    base_lines: u64,
    base_first: u64,
    examples: Vec<&'a LogRecord>,
}

/// Warn-or-worse log lines of a window and of its baseline windows.
pub struct Logs {
    /// Lines of the window.
    pub window: Vec<LogRecord>,
    /// Lines of the baseline windows.
    pub baseline: Vec<LogRecord>,
    /// Baseline duration over window duration (to scale counts).
    pub baseline_windows: f64,
}

/// The services whose logs speak for a suspect: itself, or the callers of a
/// peer or a link.
pub fn speakers(s: &Suspect, callers: &[String]) -> Vec<String> {
    match s {
        Suspect::Key(Key::Node(n)) => {
            let mut v = vec![n.clone()];
            v.extend(callers.iter().cloned());
            v
        }
        Suspect::Key(Key::Link(a, b)) => vec![a.clone(), b.clone()],
        Suspect::Instance(svc, _) => vec![svc.clone()],
    }
}

fn body(l: &LogRecord) -> String {
    l.body.to_text().into_owned()
}

/// The template that is new or surging most in the speakers' warn and
/// error lines. Lines of `subject` itself or naming it weigh more (a
/// database's trouble is told by its callers, in lines that name it; so is
/// a service's that refuses connections), and so do lines of the
/// severity of the symptom: warnings for a slowdown (slow queries, slow
/// responses), errors for failures.
pub fn log_evidence(
    logs: &Logs,
    speakers: &[String],
    instance: Option<&str>,
    subject: &str,
    slowdown: bool,
) -> Option<LogEvidence> {
    let by = |l: &&LogRecord| {
        let svc = l.service();
        speakers.iter().any(|s| *s == svc)
            && instance.is_none_or(|i| instance_of(&l.resource).is_some_and(|(_, v)| v == i))
    };
    let mut miner = Miner::new(MinerConfig::default());
    // Per template: (lines in the window, lines first in their trace in
    // the window, the same two in the baseline, the window's lines).
    let mut counts: BTreeMap<usize, Counts<'_>> = BTreeMap::new();
    for (records, now) in [(&logs.baseline, false), (&logs.window, true)] {
        let mut mine: Vec<&LogRecord> = records.iter().filter(by).collect();
        mine.sort_by_key(|l| l.time_ns);
        let mut seen = FxHashSet::default();
        for l in mine {
            let Some(id) = miner.add(&body(l)) else {
                continue;
            };
            // The first line a request writes is where its trouble began;
            // the lines after it, up the stack, repeat it.
            let first = l.trace_id == [0; 16] || seen.insert(l.trace_id);
            let c = counts.entry(id).or_default();
            if now {
                c.lines += 1;
                c.first += u64::from(first);
                c.examples.push(l);
            } else {
                c.base_lines += 1;
                c.base_first += u64::from(first);
            }
        }
    }
    let scale = logs.baseline_windows.max(1e-9);
    let best = counts
        .iter()
        .filter(|(_, c)| c.lines >= 3)
        .map(|(id, c)| {
            let expected = c.base_first as f64 / scale;
            let mut surge = (c.first as f64 + 1.0) / (expected + 1.0);
            if c.examples.iter().any(|l| l.service() == subject) {
                surge *= 3.0;
            } else if c.examples.iter().any(|l| body(l).contains(subject)) {
                surge *= 2.0;
            }
            if c.examples.iter().any(|l| (l.severity < 17) == slowdown) {
                surge *= 2.0;
            }
            (id, c.lines, c.base_lines as f64 / scale, &c.examples, surge)
        })
        .filter(|x| x.4 >= 3.0)
        .max_by(|a, b| a.4.total_cmp(&b.4).then(b.0.cmp(a.0)))?;
    let (id, n, expected, lines, _) = best;
    Some(LogEvidence {
        template: miner.template(*id),
        count: n,
        baseline_count: (expected * 10.0).round() / 10.0,
        examples: lines
            .iter()
            .take(3)
            .map(|l| LogExample {
                time: l.time_ms(),
                body: body(l),
                service: l.service().into_owned(),
                trace_id: if l.trace_id == [0; 16] {
                    String::new()
                } else {
                    hex(&l.trace_id)
                },
            })
            .collect(),
    })
}

/// When the suspect's contribution (failures started there when `errors`,
/// else self time) rose to half its peak in the window, minute by minute
/// (ms).
fn onset(w: &Profile, r: &Ranked, errors: bool) -> Option<i64> {
    let k = &r.suspect.key();
    let series: Vec<(i64, f64)> = w
        .minutes
        .iter()
        .filter(|(_, m)| m.requests > 0)
        .map(|(&min, m)| {
            let v = if errors {
                m.blamed.get(k).copied().unwrap_or(0) as f64 / m.requests as f64
            } else {
                m.self_ms.get(k).copied().unwrap_or(0.0) / m.requests as f64
            };
            (min, v)
        })
        .collect();
    let normal = if errors { r.blamed.1 } else { r.self_ms.1 };
    let peak = series.iter().map(|x| x.1).fold(f64::MIN, f64::max);
    if peak <= normal {
        return None;
    }
    let half = normal + (peak - normal) / 2.0;
    series.iter().find(|x| x.1 >= half).map(|x| x.0 * 60_000)
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The metric that proves the suspect, with a query over its spans.
pub fn metric_evidence(w: &Profile, base: &Profile, r: &Ranked) -> MetricEvidence {
    let errors = r.error_share > r.latency_share;
    // A service's own work: the requests it serves, and the messages it
    // handles when it consumes (a worker may serve nothing else).
    let served = |svc: &str| match w.consumes.contains(svc) {
        true => r#"kind=~"server|consumer""#,
        false => r#"kind="server""#,
    };
    let (selector, labels) = match &r.suspect {
        Suspect::Key(Key::Node(n)) if w.serving.contains(n) => (
            format!("spans({{service=\"{}\", {}}})", quoted(n), served(n)),
            labels(&[("service", n)]),
        ),
        // A peer: the client spans calling it, selected by what named it.
        Suspect::Key(Key::Node(n)) => match w.peers.get(n) {
            Some(p) => (
                format!("spans({{kind=\"client\", {}}})", p.naming.matcher),
                labels(&[(p.naming.label.0, &p.naming.label.1)]),
            ),
            None => (
                format!(
                    "spans({{kind=\"client\", server.address=\"{}\"}})",
                    quoted(n)
                ),
                labels(&[("server.address", n)]),
            ),
        },
        // A link: the caller's client spans, selected by how they name
        // the callee.
        Suspect::Key(Key::Link(a, b)) => match w.links.get(&(a.clone(), b.clone())) {
            Some(n) => (
                format!(
                    "spans({{service=\"{}\", kind=\"client\", {}}})",
                    quoted(a),
                    n.matcher
                ),
                labels(&[("service", a), (n.label.0, &n.label.1)]),
            ),
            None => (
                format!(
                    "spans({{service=\"{}\", kind=\"client\", server.address=\"{}\"}})",
                    quoted(a),
                    quoted(b)
                ),
                labels(&[("service", a), ("server.address", b)]),
            ),
        },
        Suspect::Instance(s, i) => {
            let key = w.instances.get(s).map_or(INSTANCE_KEYS[0], |x| x.key);
            (
                format!(
                    "spans({{service=\"{}\", {}, {key}=\"{}\"}})",
                    quoted(s),
                    served(s),
                    quoted(i)
                ),
                labels(&[("service", s), (key, i)]),
            )
        }
    };
    let key = r.suspect.key();
    let ratio = |p: &Profile| {
        if let Key::Link(a, b) = &key {
            // Calls nobody answered count for the link too.
            let (calls, failed) = p
                .unanswered
                .get(&(a.clone(), b.clone()))
                .copied()
                .unwrap_or((0, 0));
            let answered_failed = p.failed.get(&key).copied().unwrap_or(0);
            return if calls == 0 {
                0.0
            } else {
                (failed + answered_failed) as f64 / calls as f64
            };
        }
        let n = p.spans.get(&key).copied().unwrap_or(0);
        if n == 0 {
            0.0
        } else {
            p.failed.get(&key).copied().unwrap_or(0) as f64 / n as f64
        }
    };
    let failed = (ratio(base), ratio(w));
    let slower = (
        base.self_per_span(&key).unwrap_or(0.0),
        w.self_per_span(&key).unwrap_or(0.0),
    );
    // The failures it started prove it when its own spans fail more; a
    // slow callee whose callers time out is proved by its slowness.
    let errors = (errors && failed.1 > failed.0 + 0.005) || slower.1 <= slower.0;
    let (name, query, (baseline, observed)) = if errors {
        (
            "error_ratio",
            format!("error_ratio({selector}[1m])"),
            failed,
        )
    } else {
        (
            "self_time_ms_per_call",
            format!("avg_over_time({selector}[1m])"),
            slower,
        )
    };
    MetricEvidence {
        name: name.into(),
        labels,
        query,
        baseline: round3(baseline),
        observed: round3(observed),
        onset: onset(w, r, errors),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Example traces: failing ones started at the suspect, else its slowest.
pub fn trace_evidence(w: &Profile, r: &Ranked) -> Vec<TraceEvidence> {
    let key = r.suspect.key();
    let failing = w.examples.get(&key).cloned().unwrap_or_default();
    let ids: Vec<_> = if !failing.is_empty() {
        failing
    } else {
        w.slowest
            .get(&key)
            .map(|v| v.iter().map(|x| (x.1, x.2)).collect())
            .unwrap_or_default()
    };
    ids.into_iter()
        .take(3)
        .map(|(t, s)| TraceEvidence {
            trace_id: hex(&t),
            span_id: hex(&s),
        })
        .collect()
}

/// The suspect's deploy in the window, as evidence.
pub fn change_evidence(r: &Ranked) -> Option<ChangeEvidence> {
    r.deploy.as_ref().map(|(old, new, at)| ChangeEvidence {
        kind: "deploy".into(),
        description: format!("service.version {old} → {new}"),
        at: *at,
    })
}

/// One paragraph a person can check.
#[allow(clippy::too_many_arguments)]
pub fn explanation(
    cal: &Calendar,
    name: &str,
    kind: &str,
    ev: &Evidence,
    r: &Ranked,
    affected: &[String],
    blamed_share: Option<f64>,
) -> String {
    let mut parts = Vec::new();
    if let Some(m) = &ev.metric {
        let when = m
            .onset
            .map(|t| {
                let l = cal.moment(t).local;
                format!(
                    " from {:02}:{:02} {}",
                    l.hour(),
                    l.minute(),
                    cal.time_zone()
                )
            })
            .unwrap_or_default();
        let what = if m.name == "error_ratio" {
            format!(
                "error ratio {:.1}% → {:.1}%",
                m.baseline * 100.0,
                m.observed * 100.0
            )
        } else {
            format!("time per call {} → {}", ms(m.baseline), ms(m.observed))
        };
        parts.push(format!("{name} ({kind}): {what}{when}"));
    } else {
        parts.push(format!("{name} ({kind})"));
    }
    if !affected.is_empty() {
        parts.push(format!("{} degraded after it", affected.join(", ")));
    }
    if let Some(share) = blamed_share.filter(|s| *s > 0.0) {
        parts.push(format!(
            "{:.0}% of the failed requests started there",
            share * 100.0
        ));
    }
    if let Some(l) = &ev.log {
        parts.push(format!(
            "'{}' ×{}, {} in the baseline",
            l.template, l.count, l.baseline_count
        ));
    }
    parts.extend(r.notes.iter().cloned());
    let mut s = parts.join("; ");
    s.push('.');
    s
}

fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0} ms")
    } else {
        format!("{x:.1} ms")
    }
}
