//! Scoring a diagnosis (in the public JSON schema of `docs/diagnosis.md`)
//! against a scenario's answers, and summing a suite's scores as the
//! root-cause literature does: AC@k (the share of true causes in the top
//! k), Avg@5, the false-alarm rate on negatives, evidence accuracy.

use serde_json::Value;

use crate::scenario::{Expected, Scenario};

/// How one diagnosis did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The scenario's label.
    pub label: String,
    /// Whether it held a fault.
    pub fault: bool,
    /// Whether the diagnosis said incident.
    pub incident: bool,
    /// The rank (0-based) of each expected cause among the causes, if found.
    pub ranks: Vec<Option<usize>>,
    /// For each expected cause found in the top 3: whether its evidence is
    /// right (a metric that moved, a log template with the fault's words,
    /// a trace).
    pub evidence: Vec<bool>,
    /// What the diagnosis named first, for reports.
    pub top: String,
    /// The diagnosis' own time, ms.
    pub took_ms: f64,
}

fn matches(cause: &Value, e: &Expected) -> bool {
    cause["name"].as_str() == Some(e.name.as_str()) && cause["kind"].as_str() == Some(e.kind)
}

fn evidence_right(cause: &Value, e: &Expected) -> bool {
    let ev = &cause["evidence"];
    let metric = ev["metric"]["observed"].as_f64() > ev["metric"]["baseline"].as_f64();
    let says = |text: &str| {
        let text = text.to_lowercase();
        e.log_words
            .split('|')
            .any(|w| text.contains(&w.to_lowercase()))
    };
    let log = ev["log"]["template"].as_str().is_some_and(says)
        || ev["log"]["examples"]
            .as_array()
            .is_some_and(|x| x.iter().any(|l| l["body"].as_str().is_some_and(says)));
    let traces = ev["traces"].as_array().is_some_and(|t| !t.is_empty());
    metric && log && traces
}

/// Scores the diagnosis `d` (JSON) of scenario `sc`.
pub fn score(sc: &Scenario, d: &Value) -> Outcome {
    let causes = d["causes"].as_array().cloned().unwrap_or_default();
    let ranks: Vec<Option<usize>> = sc
        .expected
        .iter()
        .map(|e| causes.iter().position(|c| matches(c, e)))
        .collect();
    let evidence = sc
        .expected
        .iter()
        .zip(&ranks)
        .filter_map(|(e, r)| r.filter(|&r| r < 3).map(|r| evidence_right(&causes[r], e)))
        .collect();
    Outcome {
        label: sc.label.clone(),
        fault: !sc.faults.is_empty(),
        incident: d["incident"].as_bool().unwrap_or(false),
        ranks,
        evidence,
        top: causes
            .first()
            .map(|c| {
                format!(
                    "{} ({})",
                    c["name"].as_str().unwrap_or(""),
                    c["kind"].as_str().unwrap_or("")
                )
            })
            .unwrap_or_default(),
        took_ms: d["took_ms"].as_f64().unwrap_or(0.0),
    }
}

/// A suite's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Fault scenarios.
    pub faults: usize,
    /// Negative scenarios.
    pub negatives: usize,
    /// AC@1 over fault scenarios.
    pub top1: f64,
    /// AC@3.
    pub top3: f64,
    /// Mean of AC@1..AC@5.
    pub avg5: f64,
    /// Negatives diagnosed as incidents, as a share.
    pub false_alarms: f64,
    /// Faults not diagnosed as incidents, as a share.
    pub missed: f64,
    /// Evidence right, as a share of causes found in the top 3.
    pub evidence: f64,
    /// Diagnosis time percentiles (p50, p99), ms.
    pub took_ms: (f64, f64),
}

fn ac(o: &Outcome, k: usize) -> f64 {
    let n = o.ranks.len().min(k).max(1);
    // Two answers naming the same cause (two faults at one service) fill
    // one place, not two.
    let found = o.ranks.iter().filter(|r| r.is_some_and(|r| r < k)).count();
    (found as f64 / n as f64).min(1.0)
}

/// Sums outcomes.
pub fn summarise(outcomes: &[Outcome]) -> Summary {
    let faults: Vec<&Outcome> = outcomes.iter().filter(|o| o.fault).collect();
    let negatives: Vec<&Outcome> = outcomes.iter().filter(|o| !o.fault).collect();
    let mean = |f: &dyn Fn(&Outcome) -> f64, v: &[&Outcome]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().map(|o| f(o)).sum::<f64>() / v.len() as f64
        }
    };
    let ev: Vec<bool> = faults
        .iter()
        .flat_map(|o| o.evidence.iter().copied())
        .collect();
    let mut took: Vec<f64> = outcomes.iter().map(|o| o.took_ms).collect();
    took.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        if took.is_empty() {
            0.0
        } else {
            took[((took.len() - 1) as f64 * q).round() as usize]
        }
    };
    Summary {
        faults: faults.len(),
        negatives: negatives.len(),
        top1: mean(&|o| ac(o, 1), &faults),
        top3: mean(&|o| ac(o, 3), &faults),
        avg5: mean(&|o| (1..=5).map(|k| ac(o, k)).sum::<f64>() / 5.0, &faults),
        false_alarms: mean(&|o| f64::from(u8::from(o.incident)), &negatives),
        missed: mean(&|o| f64::from(u8::from(!o.incident)), &faults),
        evidence: if ev.is_empty() {
            0.0
        } else {
            ev.iter().filter(|x| **x).count() as f64 / ev.len() as f64
        },
        took_ms: (pct(0.5), pct(0.99)),
    }
}
