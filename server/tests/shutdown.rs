//! Shutdown on a disk that stopped taking fsyncs: the server's close says
//! what was kept, and the next start finds every acknowledged write.

use std::sync::Arc;

use sextant_storage::{Db, Durability, Labels, Options, Sample, WriteBatch};
use sextant_wal::{FaultFs, FaultPlan};

fn opts() -> Options {
    Options {
        durability: Durability::Never,
        background: false,
        ..Options::default()
    }
}

#[test]
fn a_failed_close_says_what_was_kept_and_the_writes_survive() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new(FaultPlan::default());
    let db = Db::open_with_vfs(dir.path(), opts(), Arc::new(fs.clone())).unwrap();
    let labels = Labels::new([("__name__", "up")]).unwrap();
    for i in 0..10i64 {
        let mut b = WriteBatch::default();
        b.add(labels.clone(), vec![Sample::new(i * 1000, i as f64)]);
        db.write(&b).unwrap();
    }
    // The disk refuses the next fsync, as one gone read-only or full does.
    fs.set_plan(FaultPlan {
        fail_sync: Some(1),
        ..FaultPlan::default()
    });
    let err = sextant_server::close(&db).unwrap_err().to_string();
    assert_eq!(fs.faults_fired(), 1);
    for words in [
        "could not be synced",
        "--durability always",
        "are kept",
        "sextant repair",
    ] {
        assert!(err.contains(words), "{words:?} missing from: {err}");
    }
    drop(db);

    let db = Db::open(dir.path(), opts()).unwrap();
    let m =
        sextant_storage::Matcher::new(sextant_storage::MatchOp::Equal, "__name__", "up").unwrap();
    let mut set = db.select(&[m], 0, 20_000).unwrap();
    let series = set.next().unwrap().unwrap();
    assert_eq!(series.samples.len(), 10, "every acknowledged sample");
}
