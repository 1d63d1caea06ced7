//! A scenario written into a fresh database, as the diagnosis tests read it.

#![allow(dead_code)] // each test binary uses a different part

use sextant_demo::scenario::Scenario;
use sextant_diagnose::{Calendar, DiagnoseRequest, Diagnosis, diagnose};
use sextant_storage::{Db, Durability, Options, Span};

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
