//! The incident list: open, follow, resolve; kept across restarts; a
//! damaged file is reported, and a failed save keeps the previous list.

use std::sync::Arc;

use sextant_diagnose::report::{Cause, ChangeEvidence, Evidence, Window};
use sextant_diagnose::{Change, Diagnosis, Incidents};
use sextant_wal::{FaultFs, FaultPlan, StdFs};

fn diagnosis(end: i64, top: Option<&str>) -> Diagnosis {
    Diagnosis {
        incident: top.is_some(),
        window: Window {
            start: end - 900_000,
            end,
            day_kind: "trading".into(),
            baseline_starts: Vec::new(),
            spans: 1000,
        },
        symptoms: Vec::new(),
        causes: top
            .into_iter()
            .map(|name| Cause {
                name: name.into(),
                kind: "service".into(),
                service: name.into(),
                instance: None,
                callers: Vec::new(),
                score: 0.9,
                explanation: format!("{name} broke."),
                evidence: Evidence {
                    metric: None,
                    log: None,
                    traces: Vec::new(),
                    change: None,
                },
            })
            .collect(),
        affected: Vec::new(),
        lacking: Vec::new(),
        took_ms: 1,
    }
}

#[test]
fn incidents_open_follow_resolve_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut inc = Incidents::open(Arc::new(StdFs), dir.path()).unwrap();
    assert_eq!(inc.observe(&diagnosis(1_000, None)).unwrap(), vec![]);
    assert_eq!(
        inc.observe(&diagnosis(2_000, Some("ledger-db"))).unwrap(),
        vec![Change::Opened(1)]
    );
    assert_eq!(
        inc.observe(&diagnosis(3_000, Some("ledger-db"))).unwrap(),
        vec![]
    );
    assert_eq!(
        inc.observe(&diagnosis(4_000, Some("payments"))).unwrap(),
        vec![Change::CauseChanged(1)]
    );
    // Two quiet diagnoses are not enough; the third resolves.
    assert_eq!(inc.observe(&diagnosis(5_000, None)).unwrap(), vec![]);
    assert_eq!(inc.observe(&diagnosis(6_000, None)).unwrap(), vec![]);
    assert_eq!(
        inc.observe(&diagnosis(7_000, None)).unwrap(),
        vec![Change::Resolved(1)]
    );
    assert_eq!(
        inc.observe(&diagnosis(8_000, Some("cache"))).unwrap(),
        vec![Change::Opened(2)]
    );
    drop(inc);

    let inc = Incidents::in_dir(dir.path()).unwrap();
    let list: Vec<_> = inc.list().collect();
    assert_eq!(list.len(), 2);
    assert_eq!((list[0].id, list[0].status.as_str()), (2, "open"));
    let first = inc.get(1).unwrap();
    assert_eq!(first.status, "resolved");
    assert_eq!(
        (first.opened, first.updated, first.resolved),
        (2_000, 4_000, Some(7_000))
    );
    assert_eq!(first.earlier_causes, vec!["ledger-db"]);
    assert_eq!(first.top_cause.as_ref().unwrap().name, "payments");
    assert_eq!(first.evaluations, 3);
}

/// The deploy behind an incident is seen only while the window holds it;
/// the incident keeps it as evidence while the same cause is blamed.
#[test]
fn a_deploy_stays_evidence_after_the_window_moves_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut inc = Incidents::open(Arc::new(StdFs), dir.path()).unwrap();
    let mut first = diagnosis(2_000, Some("orders"));
    first.causes[0].evidence.change = Some(ChangeEvidence {
        kind: "deploy".into(),
        description: "service.version 2.3.9 → 2.4.0".into(),
        at: 1_500,
    });
    inc.observe(&first).unwrap();
    inc.observe(&diagnosis(3_000, Some("orders"))).unwrap();
    let change = inc.get(1).unwrap().diagnosis.causes[0]
        .evidence
        .change
        .clone();
    assert_eq!(change.unwrap().at, 1_500);
    // Another cause does not inherit it.
    inc.observe(&diagnosis(4_000, Some("payments"))).unwrap();
    assert!(
        inc.get(1).unwrap().diagnosis.causes[0]
            .evidence
            .change
            .is_none()
    );
}

#[test]
fn a_damaged_file_is_named_and_a_failed_save_keeps_the_old_list() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new(FaultPlan::default());
    let mut inc = Incidents::open(Arc::new(fs.clone()), dir.path()).unwrap();
    inc.observe(&diagnosis(1_000, Some("a"))).unwrap();
    // The next save's fsync fails: the error is returned and the file on
    // disk still holds the previous list.
    fs.set_plan(FaultPlan {
        fail_sync: Some(1),
        ..FaultPlan::default()
    });
    assert!(inc.observe(&diagnosis(2_000, Some("b"))).is_err());
    let again = Incidents::in_dir(dir.path()).unwrap();
    assert_eq!(again.get(1).unwrap().top_cause.as_ref().unwrap().name, "a");

    let path = dir.path().join("incidents");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let err = Incidents::in_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("incidents") && err.contains("checksum"),
        "{err}"
    );
    std::fs::write(&path, b"nonsense").unwrap();
    let err = Incidents::in_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("magic"), "{err}");
}
