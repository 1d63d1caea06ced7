//! A scenario written into a fresh database, as the diagnosis tests read it.

#![allow(dead_code)] // each test binary uses a different part

use sextant_demo::scenario::Scenario;
use sextant_diagnose::{Calendar, DiagnoseRequest, Diagnosis, diagnose};
use sextant_storage::{Attributes, Db, Durability, Options, Span, SpanEvent, StatusCode};

/// The scenario's history and window in a database in a temporary
/// directory, with `edit` applied to every span first.
pub fn load(sc: &Scenario, edit: impl Fn(&mut Span)) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            durability: Durability::Never,
            ..Options::default()
        },
    )
    .unwrap();
    for (from, to, share) in sc.ranges() {
        let mut b = sc.generate(from, to, share);
        b.spans.iter_mut().for_each(&edit);
        db.write_spans(b.spans).unwrap();
        db.write_logs(b.logs).unwrap();
    }
    (dir, db)
}

/// The diagnosis of the scenario's window.
pub fn diagnosed_with(sc: &Scenario, edit: impl Fn(&mut Span)) -> Diagnosis {
    let (_dir, db) = load(sc, edit);
    diagnose(
        &db,
        &Calendar::nyse(),
        &DiagnoseRequest::new(sc.window.0, sc.window.1),
    )
    .unwrap()
}

/// An edit writing the simulator's spans as another estate's
/// instrumentation might: `legacy` (semantic conventions before 1.21:
/// `net.peer.name`, `http.status_code`, `db.system`, ...), `pods`
/// (instances known by `k8s.pod.name`, no `service.instance.id`), `unset`
/// (no span status: a failure says so in `error.type`, as the conventions
/// since 1.21 have it), `events` (no span status: a failure is an
/// `exception` event); anything else leaves them as they are.
pub fn variant(name: &str) -> impl Fn(&mut Span) + use<> {
    let name = name.to_string();
    move |s: &mut Span| match name.as_str() {
        "legacy" => rename(
            &mut s.attributes,
            &[
                ("server.address", "net.peer.name"),
                ("server.port", "net.peer.port"),
                ("http.response.status_code", "http.status_code"),
                ("http.request.method", "http.method"),
                ("db.system.name", "db.system"),
                ("db.namespace", "db.name"),
                ("url.full", "http.url"),
                ("messaging.destination.name", "messaging.destination"),
            ],
        ),
        "pods" => rename(
            std::sync::Arc::make_mut(&mut s.resource),
            &[("service.instance.id", "k8s.pod.name")],
        ),
        "events" => {
            if s.status == StatusCode::Error {
                s.events.push(SpanEvent {
                    time_ns: s.end_ns,
                    name: "exception".into(),
                    attributes: vec![(
                        "exception.message".into(),
                        s.status_message.as_str().into(),
                    )],
                });
            }
            s.status = StatusCode::Unset;
        }
        "unset" => {
            if s.status == StatusCode::Error {
                s.attributes.push(("error.type".into(), "_OTHER".into()));
            }
            s.status = StatusCode::Unset;
        }
        _ => {}
    }
}

fn rename(attrs: &mut Attributes, pairs: &[(&str, &str)]) {
    for (k, _) in attrs.iter_mut() {
        if let Some((_, new)) = pairs.iter().find(|(old, _)| k == old) {
            *k = (*new).to_string();
        }
    }
}
