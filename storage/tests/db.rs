//! The engine end to end: write, read, flush, reopen, compaction, retention,
//! out-of-order handling, limits and I/O faults.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{labels, opts, read_all, read_range, write};
use sextant_storage::{
    Db, Error, Exemplar, HOUR_MS, Labels, MatchOp, Matcher, Options, Sample, SeriesWrite,
    WriteBatch,
};
use sextant_wal::{FaultFs, FaultPlan};

const H: i64 = HOUR_MS;

#[test]
fn db_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Db>();
    check::<sextant_storage::SeriesSet>();
}

#[test]
fn write_select_from_head_blocks_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let a = labels("m", &[("job", "a")]);
    let b = labels("m", &[("job", "b")]);
    let want_a: Vec<(i64, f64)> = (0..500).map(|i| (i * 15_000, i as f64 * 0.5)).collect();
    let want_b: Vec<(i64, f64)> = (0..500)
        .map(|i| {
            (
                i * 15_000 + 7,
                f64::from_bits(0x7ff0_0000_0000_0002) * (i % 2) as f64,
            )
        })
        .collect();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, &a, &want_a);
        write(&db, &b, &want_b[..250]);
        let check = |db: &Db, b_len: usize| {
            let got = read_all(db, "m");
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].0, a);
            assert_eq!(got[0].1, want_a);
            let bits =
                |v: &[(i64, f64)]| v.iter().map(|(t, x)| (*t, x.to_bits())).collect::<Vec<_>>();
            assert_eq!(bits(&got[1].1), bits(&want_b[..b_len]));
        };
        check(&db, 250);
        db.flush().unwrap();
        check(&db, 250);
        write(&db, &b, &want_b[250..]);
        check(&db, 500);
        // Series a's 500 samples at 15 s span two 2 h partitions: two blocks.
        assert_eq!(db.stats().blocks.len(), 2);
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    let got = read_all(&db, "m");
    assert_eq!(got[0].1, want_a);
    assert_eq!(got[1].1.len(), 500);
    // Range restriction is inclusive at both ends.
    let s: Vec<_> = db
        .select(&[Matcher::equal("job", "a")], 15_000, 45_000)
        .unwrap()
        .map(|s| s.unwrap())
        .collect();
    assert_eq!(
        s[0].samples.iter().map(|x| x.t).collect::<Vec<_>>(),
        vec![15_000, 30_000, 45_000]
    );
}

#[test]
fn matchers_labels_and_series_api() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    for (job, env) in [("a", "prod"), ("b", "dev"), ("c", "prod")] {
        write(
            &db,
            &labels("up", &[("job", job), ("env", env)]),
            &[(1000, 1.0)],
        );
    }
    write(&db, &labels("other", &[("job", "a")]), &[(1000, 1.0)]);
    db.flush().unwrap();
    write(&db, &labels("up", &[("job", "d")]), &[(2000, 1.0)]);
    let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
    let jobs = |ms: &[Matcher]| -> Vec<String> {
        db.series(ms, 0, 10_000)
            .unwrap()
            .iter()
            .map(|l| l.get("job").unwrap_or("").to_string())
            .collect()
    };
    // Label order: env sorts before job, and a missing env before any value.
    assert_eq!(
        jobs(&[m(MatchOp::Equal, "__name__", "up")]),
        ["b", "a", "c", "d"]
    );
    assert_eq!(
        jobs(&[
            m(MatchOp::Equal, "__name__", "up"),
            m(MatchOp::NotEqual, "env", "prod")
        ]),
        ["b", "d"]
    );
    assert_eq!(jobs(&[m(MatchOp::Regex, "job", "a|d")]), ["a", "a", "d"]);
    assert_eq!(
        jobs(&[
            m(MatchOp::Equal, "__name__", "up"),
            m(MatchOp::NotRegex, "job", "[ab]")
        ]),
        ["c", "d"]
    );
    assert_eq!(
        db.label_names(&[], 0, 10_000).unwrap(),
        ["__name__", "env", "job"]
    );
    assert_eq!(
        db.label_values("env", &[], 0, 10_000).unwrap(),
        ["dev", "prod"]
    );
    assert_eq!(
        db.label_values("job", &[m(MatchOp::Equal, "__name__", "other")], 0, 10_000)
            .unwrap(),
        ["a"]
    );
    // Time range excludes blocks and heads outside it.
    assert!(
        db.series(&[m(MatchOp::Equal, "__name__", "up")], 5000, 9000)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn series_refs_are_hints_that_never_misdirect_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let (a, b) = (labels("m", &[("job", "a")]), labels("m", &[("job", "b")]));
    let batch = |t: i64| {
        let mut w = WriteBatch::default();
        w.add(a.clone(), vec![Sample::new(t, 1.0)]);
        w.add(b.clone(), vec![Sample::new(t, 2.0)]);
        w
    };
    let mut refs = vec![None, None];
    db.write_with_refs(&batch(1000), &mut refs, usize::MAX)
        .unwrap();
    let (ra, rb) = (refs[0].unwrap(), refs[1].unwrap());
    assert_ne!(ra, rb);
    // Valid references: the same series again.
    let s = db
        .write_with_refs(&batch(2000), &mut refs, usize::MAX)
        .unwrap();
    assert_eq!(
        (s.series_created, refs.clone()),
        (0, vec![Some(ra), Some(rb)])
    );
    // Swapped references (another series' labels): looked up by labels.
    let mut swapped = vec![Some(rb), Some(ra)];
    db.write_with_refs(&batch(3000), &mut swapped, usize::MAX)
        .unwrap();
    assert_eq!(swapped, vec![Some(ra), Some(rb)]);
    // After a flush the head is new: old references are stale, and the
    // write hands back fresh ones.
    db.flush().unwrap();
    db.write_with_refs(&batch(4000), &mut refs, usize::MAX)
        .unwrap();
    assert!(refs[0].is_some() && refs[0] != Some(ra));
    let got = read_all(&db, "m");
    let want = |v: f64| (1..=4).map(|i| (i * 1000, v)).collect::<Vec<_>>();
    assert_eq!(got, vec![(a, want(1.0)), (b, want(2.0))]);
}

#[test]
fn out_of_order_window_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            ooo_window_ms: 60_000,
            ..opts()
        },
    )
    .unwrap();
    let l = labels("m", &[]);
    write(&db, &l, &[(100_000, 1.0), (200_000, 2.0)]);
    // Within the window: merged in order; duplicate timestamp: last write wins.
    write(&db, &l, &[(150_000, 1.5), (200_000, 20.0)]);
    let mut b = WriteBatch::default();
    b.add(
        l.clone(),
        vec![Sample::new(139_999, 9.0), Sample::new(250_000, 2.5)],
    );
    let err = db.write(&b).unwrap_err();
    match &err {
        Error::OutOfOrder {
            timestamp,
            min_allowed,
            rejected,
            accepted,
            ..
        } => {
            assert_eq!(
                (*timestamp, *min_allowed, *rejected, *accepted),
                (139_999, 140_000, 1, 1)
            );
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("ooo_window"), "{err}");
    let want = vec![
        (100_000, 1.0),
        (150_000, 1.5),
        (200_000, 20.0),
        (250_000, 2.5),
    ];
    assert_eq!(read_all(&db, "m")[0].1, want);
    db.flush().unwrap();
    assert_eq!(read_all(&db, "m")[0].1, want);
    // Rewriting a flushed timestamp overrides the block's value.
    write(&db, &l, &[(150_000, 15.0)]);
    assert_eq!(read_all(&db, "m")[0].1[1], (150_000, 15.0));
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(read_all(&db, "m")[0].1[1], (150_000, 15.0));
    db.compact().unwrap();
    assert_eq!(
        db.stats().blocks.len(),
        1,
        "overlapping pieces of one partition merge"
    );
    let got = read_all(&db, "m")[0].1.clone();
    assert_eq!(
        got,
        vec![
            (100_000, 1.0),
            (150_000, 1.5),
            (200_000, 20.0),
            (250_000, 2.5)
        ]
        .into_iter()
        .map(|(t, v)| if t == 150_000 { (t, 15.0) } else { (t, v) })
        .collect::<Vec<_>>()
    );
}

const STEP: i64 = 60_000;

/// 30 h of 20 series at 1 min, flushed every 3 h, with a resend of the last
/// 5 minutes after every flush (the duplicates a retrying sender makes).
fn thirty_hours(db: &Db) {
    let series: Vec<Labels> = (0..20)
        .map(|i| labels("c", &[("i", &i.to_string())]))
        .collect();
    let batch = |ts: &mut dyn Iterator<Item = i64>| {
        let ts: Vec<i64> = ts.collect();
        let mut b = WriteBatch::default();
        for (i, l) in series.iter().enumerate() {
            b.add(
                l.clone(),
                ts.iter()
                    .map(|t| Sample::new(*t, *t as f64 / 1000.0 + i as f64))
                    .collect(),
            );
        }
        b
    };
    let mut t = 0;
    while t < 30 * H {
        db.write(&batch(&mut (0..10).map(|k| t + k * STEP)))
            .unwrap();
        t += 10 * STEP;
        if t % (3 * H) == 0 {
            db.flush().unwrap();
            db.write(&batch(&mut (1..=5).map(|k| t - k * STEP)))
                .unwrap();
        }
    }
    db.flush().unwrap();
}

/// Every sample at or after `from` is there exactly once with its value.
fn check_thirty_hours(db: &Db, from: i64) {
    let got = read_all(db, "c");
    assert_eq!(got.len(), 20);
    for (l, s) in &got {
        let i: i64 = l.get("i").unwrap().parse().unwrap();
        let want: Vec<(i64, f64)> = (0..30 * H / STEP)
            .map(|k| k * STEP)
            .filter(|t| *t >= from)
            .map(|t| (t, t as f64 / 1000.0 + i as f64))
            .collect();
        let got: Vec<(i64, f64)> = s.iter().copied().filter(|(t, _)| *t >= from).collect();
        assert_eq!(got, want, "series {i}");
    }
}

#[test]
fn compaction_keeps_every_sample_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    thirty_hours(&db);
    let before = db.stats().blocks.len();
    check_thirty_hours(&db, 0);
    db.compact().unwrap();
    let after = db.stats();
    assert!(
        after.blocks.len() < before,
        "{before} -> {}",
        after.blocks.len()
    );
    assert!(after.blocks.iter().any(|b| b.meta.level >= 2));
    assert_eq!(
        after.block_samples(),
        20 * 30 * H as u64 / STEP as u64,
        "no duplicate stored"
    );
    check_thirty_hours(&db, 0);
    drop(db);
    check_thirty_hours(&Db::open(dir.path(), opts()).unwrap(), 0);
}

/// Flushes bounded by head size leave block after block in the current,
/// still open window; maintenance merges them four of a size at a time, so
/// their number stays logarithmic, and every sample is read exactly once.
#[test]
fn blocks_piling_up_in_the_open_window_are_merged_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let series: Vec<Labels> = (0..10)
        .map(|i| labels("m", &[("i", &i.to_string())]))
        .collect();
    let value = |t: i64, i: usize| (t / 1000) as f64 + i as f64 * 0.25;
    const FLUSHES: i64 = 40;
    const PER_FLUSH: i64 = 12;
    for f in 0..FLUSHES {
        let mut b = WriteBatch::default();
        for (i, l) in series.iter().enumerate() {
            let ts = (0..PER_FLUSH).map(|k| (f * PER_FLUSH + k) * 15_000);
            b.add(l.clone(), ts.map(|t| Sample::new(t, value(t, i))).collect());
        }
        db.write(&b).unwrap();
        db.flush().unwrap();
        db.maintain().unwrap();
        let blocks = db.stats().blocks.len();
        assert!(blocks <= 9, "{blocks} blocks after {} flushes", f + 1);
    }
    // 40 flushes = 2·16 + 2·4: tiers of 16 and 4 flushes' worth.
    let stats = db.stats();
    assert_eq!(stats.blocks.len(), 4);
    assert_eq!(stats.block_samples(), (10 * FLUSHES * PER_FLUSH) as u64);
    let want = |i: usize| -> Vec<(i64, f64)> {
        (0..FLUSHES * PER_FLUSH)
            .map(|k| (k * 15_000, value(k * 15_000, i)))
            .collect()
    };
    for (l, got) in read_all(&db, "m") {
        let i: usize = l.get("i").unwrap().parse().unwrap();
        assert_eq!(got, want(i), "series {i}");
    }
}

/// Reads of time windows through the shared frame cache, however small
/// (0 = off, 1 byte = every frame evicted at once) or large, give the
/// whole series filtered, before and after compaction replaces the blocks
/// whose frames are cached.
#[test]
fn windows_read_through_any_frame_cache_are_the_filtered_series() {
    for cache in [0, 1, 32 << 20] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(
            dir.path(),
            Options {
                frame_cache_bytes: cache,
                ..opts()
            },
        )
        .unwrap();
        thirty_hours(&db);
        for round in 0..2 {
            let all = read_all(&db, "c");
            for (lo, hi) in [(5 * H + 30_000, 7 * H), (0, 90_000), (29 * H, i64::MAX)] {
                for _ in 0..2 {
                    let got = read_range(&db, "c", lo, hi);
                    let want: Vec<(Labels, Vec<(i64, f64)>)> = all
                        .iter()
                        .map(|(l, s)| {
                            let w = s.iter().copied().filter(|(t, _)| *t >= lo && *t <= hi);
                            (l.clone(), w.collect())
                        })
                        .collect();
                    assert_eq!(got, want, "cache {cache}, round {round}, [{lo}, {hi}]");
                }
            }
            check_thirty_hours(&db, 0);
            db.compact().unwrap();
        }
    }
}

#[test]
fn retention_keeps_every_sample_newer_than_the_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let keep = 10 * H;
    let db = Db::open(
        dir.path(),
        Options {
            retention: Some(Duration::from_millis(keep as u64)),
            ..opts()
        },
    )
    .unwrap();
    thirty_hours(&db);
    db.compact().unwrap();
    assert!(
        db.stats()
            .blocks
            .iter()
            .all(|b| b.meta.max_t - b.meta.min_t < 2 * H),
        "ranges capped at retention/10"
    );
    let deleted = db.apply_retention().unwrap();
    assert!(deleted > 0);
    let cutoff = 30 * H - STEP - keep;
    let oldest = db
        .stats()
        .blocks
        .iter()
        .map(|b| b.meta.min_t)
        .min()
        .unwrap();
    assert!(oldest > 0 && oldest <= cutoff, "{oldest}");
    check_thirty_hours(&db, cutoff);
    drop(db);
    check_thirty_hours(&Db::open(dir.path(), opts()).unwrap(), oldest);
}

#[test]
fn retention_by_size_deletes_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let l = labels("s", &[]);
    for p in 0..4 {
        write(
            &db,
            &l,
            &(0..100)
                .map(|i| (p * 2 * H + i * 1000, i as f64))
                .collect::<Vec<_>>(),
        );
        db.flush().unwrap();
    }
    let sizes: Vec<u64> = db.stats().blocks.iter().map(|b| b.bytes).collect();
    drop(db);
    let limit = sizes[2] + sizes[3];
    let db = Db::open(
        dir.path(),
        Options {
            max_bytes: Some(limit),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(db.apply_retention().unwrap(), 2);
    let got = read_all(&db, "s");
    assert_eq!(got[0].1.first().unwrap().0, 4 * H);
    assert_eq!(got[0].1.len(), 200);
}

#[test]
fn exemplars_persist_with_their_series() {
    let dir = tempfile::tempdir().unwrap();
    let l = labels("req_total", &[("svc", "a")]);
    let ex = |t: i64, id: u8| Exemplar {
        t,
        value: 1.0,
        trace_id: [id; 16],
        span_id: [id; 8],
        labels: Labels::new([("user", "u1")]).unwrap(),
    };
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        let batch = WriteBatch {
            series: vec![SeriesWrite {
                labels: l.clone(),
                samples: vec![Sample::new(10, 1.0)],
                histograms: Vec::new(),
                exemplars: vec![ex(10, 1), ex(20, 2)],
            }],
        };
        db.write(&batch).unwrap();
        db.flush().unwrap();
        let batch = WriteBatch {
            series: vec![SeriesWrite {
                labels: l.clone(),
                samples: vec![],
                histograms: Vec::new(),
                exemplars: vec![ex(30, 3)],
            }],
        };
        db.write(&batch).unwrap();
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    let got = db.exemplars(&[Matcher::equal("svc", "a")], 0, 100).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, vec![ex(10, 1), ex(20, 2), ex(30, 3)]);
    assert_eq!(
        db.exemplars(&[Matcher::equal("svc", "a")], 15, 25).unwrap()[0].1,
        vec![ex(20, 2)]
    );
}

#[test]
fn limits_give_clear_errors_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            max_series: 2,
            ..opts()
        },
    )
    .unwrap();
    let huge = "x".repeat(20_000);
    let mut b = WriteBatch::default();
    b.add(labels("ok", &[]), vec![Sample::new(1, 1.0)]);
    b.add(labels("bad", &[("v", &huge)]), vec![Sample::new(1, 1.0)]);
    let err = db.write(&b).unwrap_err();
    assert!(err.to_string().contains("max_value_len"), "{err}");
    assert!(
        read_all(&db, "ok").is_empty(),
        "a rejected batch stores nothing"
    );
    write(&db, &labels("a", &[]), &[(1, 1.0)]);
    write(&db, &labels("b", &[]), &[(1, 1.0)]);
    let mut b = WriteBatch::default();
    b.add(labels("c", &[]), vec![Sample::new(1, 1.0)]);
    let err = db.write(&b).unwrap_err();
    assert!(matches!(err, Error::TooManySeries { limit: 2 }), "{err}");
    // Existing series keep accepting samples; the flush frees the head.
    write(&db, &labels("a", &[]), &[(2, 2.0)]);
    db.flush().unwrap();
    db.write(&b).unwrap();
    assert_eq!(read_all(&db, "a")[0].1, vec![(1, 1.0), (2, 2.0)]);
}

#[test]
fn second_open_of_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _db = Db::open(dir.path(), opts()).unwrap();
    assert!(matches!(
        Db::open(dir.path(), opts()).unwrap_err(),
        Error::Locked(_)
    ));
}

#[test]
fn io_faults_poison_writes_keep_reads_and_reopen_recovers() {
    // Fail each of the first writes/fsyncs in turn, on the write path and on flush.
    for n in 1..12u64 {
        for plan in [
            FaultPlan {
                fail_sync: Some(n),
                ..Default::default()
            },
            FaultPlan {
                fail_write: Some(n),
                ..Default::default()
            },
            FaultPlan {
                tear_write: Some((n, 5)),
                ..Default::default()
            },
        ] {
            let dir = tempfile::tempdir().unwrap();
            let fs = FaultFs::new(FaultPlan::default());
            let db = Db::open_with_vfs(dir.path(), opts(), Arc::new(fs.clone())).unwrap();
            let l = labels("f", &[]);
            write(&db, &l, &[(0, 0.0)]);
            fs.set_plan(plan);
            let mut acked = vec![(0, 0.0)];
            let mut failed = None;
            for i in 1..40i64 {
                let mut b = WriteBatch::default();
                b.add(l.clone(), vec![Sample::new(i * 1000, i as f64)]);
                let res = if i % 10 == 0 {
                    db.flush().map(|_| Default::default())
                } else {
                    db.write(&b)
                };
                match res {
                    Ok(_) if i % 10 != 0 => acked.push((i * 1000, i as f64)),
                    Ok(_) => {}
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let Some(first) = failed else { continue };
            assert!(
                !matches!(first, Error::Poisoned(_)),
                "{plan:?}: first error is the I/O error: {first}"
            );
            let mut b = WriteBatch::default();
            b.add(l.clone(), vec![Sample::new(1_000_000, 1.0)]);
            let again = db.write(&b).unwrap_err();
            assert!(
                matches!(
                    again,
                    Error::Poisoned(_) | Error::Wal(sextant_wal::Error::Poisoned(_))
                ),
                "{plan:?}: {again}"
            );
            assert!(again.to_string().contains("reopen"), "{again}");
            // Reads keep working and see every acknowledged sample.
            let got = read_all(&db, "f");
            assert!(got[0].1.starts_with(&acked), "{plan:?}");
            drop(db);
            let db = Db::open(dir.path(), opts()).unwrap();
            let got = read_all(&db, "f");
            assert!(
                got[0].1.starts_with(&acked),
                "{plan:?}: after reopen {:?} vs {:?}",
                got[0].1,
                acked
            );
            write(&db, &l, &[(2_000_000, 2.0)]);
        }
    }
}

#[test]
fn interrupted_flush_and_compaction_leave_no_visible_trace() {
    let dir = tempfile::tempdir().unwrap();
    let l = labels("x", &[]);
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, &l, &[(1, 1.0), (2, 2.0)]);
        db.flush().unwrap();
        write(&db, &l, &[(3, 3.0)]);
        db.flush().unwrap();
    }
    // A half-written block directory and a parent a compaction already replaced.
    let blocks = dir.path().join("blocks");
    std::fs::create_dir(blocks.join("00000000000000000099.tmp")).unwrap();
    std::fs::write(blocks.join("00000000000000000099.tmp/chunks"), b"partial").unwrap();
    let kept = {
        let db = Db::open(dir.path(), opts()).unwrap();
        db.compact().unwrap();
        db.stats().blocks[0].meta.clone()
    };
    assert_eq!(kept.parents.len(), 2);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(!blocks.join("00000000000000000099.tmp").exists());
    assert_eq!(read_all(&db, "x")[0].1, vec![(1, 1.0), (2, 2.0), (3, 3.0)]);
}

#[test]
fn concurrent_writers_and_readers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), opts()).unwrap());
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for i in 0..200i64 {
                    let mut b = WriteBatch::default();
                    for s in 0..5 {
                        b.add(
                            labels("cc", &[("w", &w.to_string()), ("s", &s.to_string())]),
                            vec![Sample::new(i * 1000, i as f64)],
                        );
                    }
                    db.write(&b).unwrap();
                    if w == 0 && i % 50 == 49 {
                        db.flush().unwrap();
                    }
                }
            })
        })
        .collect();
    let reader = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || {
            for _ in 0..50 {
                for s in read_all(&db, "cc") {
                    // Every series read is gap-free from 0: no sample lost mid-flush.
                    for (k, (t, _)) in s.1.iter().enumerate() {
                        assert_eq!(*t, k as i64 * 1000, "{}", s.0);
                    }
                }
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
    let got = read_all(&db, "cc");
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|(_, s)| s.len() == 200));
}

/// Writers that create series at the same time append their series
/// records in any order, and a writer may log samples of a series another
/// writer created but has not logged yet: every acknowledged sample must
/// come back after a reopen, whatever the interleaving.
#[test]
fn concurrent_writers_creating_series_reopen_with_every_sample() {
    const WRITERS: usize = 8;
    const BATCHES: usize = 30;
    const NEW: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let db = Arc::new(Db::open(dir.path(), opts()).unwrap());
        let threads: Vec<_> = (0..WRITERS)
            .map(|w| {
                let db = Arc::clone(&db);
                std::thread::spawn(move || {
                    for b in 0..BATCHES {
                        let mut batch = WriteBatch::default();
                        for s in 0..NEW {
                            // Half the series are this writer's own, half
                            // are shared by a pair of writers: the creator
                            // and another writer both log samples of them.
                            let id = if s % 2 == 0 {
                                format!("{round}-own{w}-{b}-{s}")
                            } else {
                                format!("{round}-pair{}-{b}-{s}", w / 2)
                            };
                            batch.add(
                                labels("race", &[("id", &id)]),
                                vec![Sample::new(w as i64, 1.0)],
                            );
                        }
                        db.write(&batch).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(db);
        let db = Db::open(dir.path(), opts()).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let got = read_all(&db, "race");
        let samples: usize = got.iter().map(|(_, s)| s.len()).sum();
        let writes = (round + 1) * WRITERS * BATCHES * NEW;
        assert_eq!(got.len(), writes / 2 + writes / 4, "round {round}: series");
        assert_eq!(samples, writes, "round {round}: every acknowledged sample");
    }
}

/// A write refused for `max_series` must leave nothing half-applied: the
/// series it created are logged by the next write that uses them, so that
/// write's acknowledged samples survive a reopen.
#[test]
fn series_limit_leaves_no_unlogged_series_behind() {
    let dir = tempfile::tempdir().unwrap();
    let o = || Options {
        max_series: 100,
        ..opts()
    };
    let db = Db::open(dir.path(), o()).unwrap();
    let l = |i: usize| labels("lim", &[("i", &i.to_string())]);
    let mut b = WriteBatch::default();
    for i in 0..150 {
        b.add(l(i), vec![Sample::new(1, 1.0)]);
    }
    assert!(matches!(
        db.write(&b).unwrap_err(),
        Error::TooManySeries { limit: 100 }
    ));
    let mut b = WriteBatch::default();
    for i in 0..50 {
        b.add(l(i), vec![Sample::new(2, 2.0)]);
    }
    db.write(&b).unwrap();
    drop(db);
    let db = Db::open(dir.path(), o()).unwrap();
    let got = read_all(&db, "lim");
    assert_eq!(got.len(), 50, "every acknowledged series is back");
    assert!(got.iter().all(|(_, s)| s == &vec![(2, 2.0)]));
}

/// A flipped byte in a block's chunks costs only the series whose chunks
/// sit in the damaged frame: repair rewrites the block with every series
/// that still reads (issue 19: it set the whole block aside, one byte
/// cost 127,200 of 288,000 samples), and the database opens and answers.
#[test]
fn repair_keeps_every_series_of_a_damaged_block_that_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (series, per) = (2_000usize, 240i64);
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        let mut b = WriteBatch::default();
        let mut rng = fastrand::Rng::with_seed(7);
        for s in 0..series {
            b.add(
                labels("dmg", &[("s", &format!("{s:05}"))]),
                (0..per)
                    .map(|i| Sample::new(i * 15_000, rng.f64()))
                    .collect(),
            );
        }
        db.write(&b).unwrap();
        db.flush().unwrap();
    }
    let block = std::fs::read_dir(dir.path().join("blocks"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let chunks = block.join("chunks");
    let mut bytes = std::fs::read(&chunks).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&chunks, &bytes).unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        let err = db
            .select(&[Matcher::equal("__name__", "dmg")], i64::MIN, i64::MAX)
            .unwrap()
            .find_map(Result::err)
            .expect("a damaged frame is an error, not silence");
        assert!(err.to_string().contains("sextant repair"), "{err}");
        // The error carries the file and the damaged frame's offset.
        match &err {
            Error::Corrupt {
                file,
                offset: Some(o),
                ..
            } => {
                assert!(file.ends_with("chunks"), "{err}");
                assert!(*o > 0 && (*o as usize) <= mid, "{err}");
            }
            other => panic!("{other}"),
        }
    }
    let report = sextant_storage::repair(dir.path(), &sextant_wal::StdFs).unwrap();
    assert_eq!(report.blocks.len(), 1, "{report:?}");
    let sextant_storage::BlockOutcome::Salvaged {
        series_kept,
        series_lost,
        samples_kept,
        ..
    } = report.blocks[0].outcome
    else {
        panic!("{report:?}")
    };
    assert!(
        series_lost > 0 && series_lost < series as u64 / 4,
        "{report:?}"
    );
    assert_eq!(series_kept + series_lost, series as u64);
    assert_eq!(samples_kept, series_kept * per as u64);
    let db = Db::open(dir.path(), opts()).unwrap();
    let got = read_all(&db, "dmg");
    assert_eq!(got.len() as u64, series_kept);
    assert!(got.iter().all(|(_, s)| s.len() == per as usize));
    assert!(dir.path().join("blocks").read_dir().unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".corrupt")
    }));
}

/// A flipped byte in a block's small files (series, postings, meta) makes
/// open fail with a message that names the file and says to run repair.
/// Repair rebuilds a block whose postings or meta are damaged from the
/// rest, keeping its data; a damaged series table sets that block aside.
/// Either way the rest of the database opens.
#[test]
fn a_damaged_small_file_names_repair_and_repair_keeps_what_it_can() {
    for (file, kept) in [("series", false), ("postings", true), ("meta", true)] {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Db::open(dir.path(), opts()).unwrap();
            write(&db, &labels("damaged", &[]), &[(1_000, 1.0)]);
            db.flush().unwrap();
            write(&db, &labels("kept", &[]), &[(10 * H, 2.0)]);
            db.flush().unwrap();
        }
        let mut blocks: Vec<_> = std::fs::read_dir(dir.path().join("blocks"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        blocks.sort();
        let path = blocks[0].join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let err = Db::open(dir.path(), opts()).unwrap_err().to_string();
        assert!(
            err.contains(file) && err.contains("sextant repair"),
            "{file}: {err}"
        );
        let report = sextant_storage::repair(dir.path(), &sextant_wal::StdFs).unwrap();
        assert_eq!(report.blocks.len(), 1, "{file}: {report:?}");
        let salvaged = matches!(
            report.blocks[0].outcome,
            sextant_storage::BlockOutcome::Salvaged { series_kept: 1, .. }
        );
        assert_eq!(salvaged, kept, "{file}: {report:?}");
        let db = Db::open(dir.path(), opts()).unwrap();
        let damaged = read_all(&db, "damaged");
        if kept {
            assert_eq!(damaged[0].1, vec![(1_000, 1.0)], "{file}");
        } else {
            assert!(damaged.is_empty(), "{file}");
        }
        assert_eq!(read_all(&db, "kept")[0].1, vec![(10 * H, 2.0)], "{file}");
    }
}

/// A panic in the background thread (a bug) poisons the database with the
/// reason instead of vanishing while writes pile up unflushed; reads keep
/// working (issue 20).
#[test]
fn a_panicking_maintenance_thread_poisons_writes_with_the_reason() {
    fn boom() {
        panic!("injected maintenance bug");
    }
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            background: true,
            max_head_samples: 10,
            release_memory: Some(boom),
            ..Options::default()
        },
    )
    .unwrap();
    let l = labels("p", &[]);
    write(
        &db,
        &l,
        &(0..20).map(|i| (i * 1000, 1.0)).collect::<Vec<_>>(),
    );
    let mut err = None;
    for i in 0..200 {
        let mut b = WriteBatch::default();
        b.add(l.clone(), vec![Sample::new(100_000 + i, 1.0)]);
        if let Err(e) = db.write(&b) {
            err = Some(e);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = err.expect("writes are refused after the panic").to_string();
    assert!(
        err.contains("panicked") && err.contains("injected maintenance bug"),
        "{err}"
    );
    assert!(!read_all(&db, "p")[0].1.is_empty(), "reads keep working");
}

/// Between two compaction merges, a flush the head has come to need runs
/// first: ingest goes on during a merge, and back-to-back merges let the
/// head run a third past its limit (issue 19). The release hook, which
/// runs after each merge, writes enough to make a flush due.
#[test]
fn a_due_flush_runs_between_compaction_merges() {
    use std::sync::OnceLock;
    static DB: OnceLock<Arc<Db>> = OnceLock::new();
    static ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    fn write_during_merge() {
        let Some(db) = DB.get() else { return };
        if ONCE.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let mut b = WriteBatch::default();
        b.add(
            labels("late", &[]),
            (0..150).map(|i| Sample::new(100 * H + i, 1.0)).collect(),
        );
        db.write(&b).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Db::open(
            dir.path(),
            Options {
                max_head_samples: 100,
                release_memory: Some(write_during_merge),
                ..opts()
            },
        )
        .unwrap(),
    );
    // Closed windows with several blocks each: work for a few merges.
    for part in 0..6 {
        for piece in 0..2 {
            write(
                &db,
                &labels("old", &[]),
                &[(part * 2 * H + piece * 1000, 1.0)],
            );
            db.flush().unwrap();
        }
    }
    DB.set(Arc::clone(&db)).ok();
    // The hook's first call is after the first merge (nothing is due
    // before it); the write makes a flush due in the middle of compaction.
    db.maintain().unwrap();
    let st = db.stats();
    assert!(
        st.head_samples < 100,
        "the flush that became due during compaction ran: {} samples left in the head",
        st.head_samples
    );
    assert_eq!(read_all(&db, "late")[0].1.len(), 150);
}
