//! Format compatibility: `tests/compat/v1/` is a data directory written by
//! the v1 formats (WAL segments with every record type, and blocks holding
//! samples, exemplars, logs and spans, flushed and compacted). Today's
//! reader, and every later one, must open it and answer exactly this.
//! A format change that breaks it needs a version bump and a reader for
//! the old version (docs/format.md's change log).
//!
//! `cargo test --test compat -- --ignored write_v1_fixture` rewrote it
//! (only when a format version is added: the committed files are the
//! old version's ground truth).

use std::path::{Path, PathBuf};

use sextant::{
    AnyValue, Db, Exemplar, Labels, LogRecord, LogSearch, Matcher, Options, Sample, SeriesWrite,
    Span, SpanSearch, WriteBatch,
};

const T0: i64 = 1_700_000_000_000;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/v1")
}

fn options() -> Options {
    Options {
        background: false,
        ..Options::default()
    }
}

fn labels(job: &str) -> Labels {
    Labels::new([("__name__", "compat_total"), ("job", job)]).unwrap()
}

fn log(i: i64) -> LogRecord {
    LogRecord {
        time_ns: (T0 + i * 1_000) * 1_000_000,
        severity: 17,
        severity_text: "ERROR".into(),
        body: AnyValue::Str(format!("request {i} failed: timeout")),
        resource: vec![("service.name".into(), "checkout".into())].into(),
        trace_id: [i as u8 + 1; 16],
        ..LogRecord::default()
    }
}

fn span(i: i64) -> Span {
    Span {
        trace_id: [i as u8 + 1; 16],
        span_id: [i as u8 + 1; 8],
        name: format!("GET /item/{i}"),
        start_ns: (T0 + i * 1_000) * 1_000_000,
        end_ns: (T0 + i * 1_000 + 5) * 1_000_000,
        resource: vec![("service.name".into(), "checkout".into())].into(),
        ..Span::default()
    }
}

/// Writes the fixture: two flushes of one partition merged by compaction,
/// then a WAL holding what came after.
#[test]
#[ignore]
fn write_v1_fixture() {
    let dir = fixture();
    let _ = std::fs::remove_dir_all(&dir);
    let db = Db::open(&dir, options()).unwrap();
    let batch = |from: i64, to: i64| {
        let mut b = WriteBatch::default();
        for (job, f) in [("a", 1.0), ("b", 2.0)] {
            b.series.push(SeriesWrite {
                labels: labels(job),
                samples: (from..to)
                    .map(|i| Sample::new(T0 + i * 15_000, i as f64 * f))
                    .collect(),
                histograms: Vec::new(),
                exemplars: vec![Exemplar {
                    t: T0 + from * 15_000,
                    value: 0.5,
                    trace_id: [9; 16],
                    span_id: [9; 8],
                    labels: Labels::new([("user", "u-1")]).unwrap(),
                }],
            });
        }
        b
    };
    db.write(&batch(0, 20)).unwrap();
    db.write_logs((0..5).map(log).collect()).unwrap();
    db.write_spans((0..5).map(span).collect()).unwrap();
    db.flush().unwrap();
    db.write(&batch(20, 40)).unwrap();
    db.write_logs((5..10).map(log).collect()).unwrap();
    db.write_spans((5..10).map(span).collect()).unwrap();
    db.flush().unwrap();
    db.compact().unwrap();
    db.write(&batch(40, 60)).unwrap();
    db.write_logs((10..15).map(log).collect()).unwrap();
    db.write_spans((10..15).map(span).collect()).unwrap();
    db.close().unwrap();
    drop(db);
    std::fs::remove_file(dir.join("LOCK")).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn v1_data_directories_open_and_answer_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), tmp.path());
    let db = Db::open(tmp.path(), options()).expect("a v1 data directory opens");
    for round in 0..2 {
        let series: Vec<_> = db
            .select(
                &[Matcher::equal("__name__", "compat_total")],
                i64::MIN,
                i64::MAX,
            )
            .unwrap()
            .map(|s| s.unwrap())
            .collect();
        assert_eq!(series.len(), 2, "round {round}");
        for (s, f) in series.iter().zip([1.0, 2.0]) {
            assert_eq!(s.samples.len(), 60, "round {round}: {}", s.labels);
            for (i, x) in s.samples.iter().enumerate() {
                assert_eq!((x.t, x.v), (T0 + i as i64 * 15_000, i as f64 * f));
            }
        }
        let ex = db
            .exemplars(&[Matcher::equal("job", "a")], i64::MIN, i64::MAX)
            .unwrap();
        assert_eq!(
            ex.iter().map(|(_, e)| e.len()).sum::<usize>(),
            3,
            "round {round}"
        );
        let mut logs = db
            .search_logs(&LogSearch {
                limit: usize::MAX,
                ..LogSearch::default()
            })
            .unwrap();
        logs.reverse();
        assert_eq!(logs, (0..15).map(log).collect::<Vec<_>>(), "round {round}");
        let hits = db
            .search_logs(&LogSearch {
                text: Some(sextant::TextQuery::parse("\"request 7\"").unwrap()),
                ..LogSearch::default()
            })
            .unwrap();
        assert_eq!(hits, vec![log(7)], "round {round}");
        let mut spans = db
            .find_spans(&SpanSearch {
                limit: usize::MAX,
                ..SpanSearch::default()
            })
            .unwrap();
        spans.reverse();
        assert_eq!(
            spans,
            (0..15).map(span).collect::<Vec<_>>(),
            "round {round}"
        );
        let t = db.trace(&[8; 16]).unwrap().expect("trace by id");
        assert_eq!(t.spans, vec![span(7)]);
        // The second round reads it all from blocks.
        db.flush().unwrap();
        db.compact().unwrap();
    }
    for b in db.stats().blocks {
        let d = tmp
            .path()
            .join("blocks")
            .join(format!("{:020}", b.meta.seq));
        sextant::Block::open(&sextant::wal::StdFs, &d)
            .unwrap()
            .verify()
            .unwrap();
    }
}
