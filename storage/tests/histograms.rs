//! Native-histogram samples through every layer: write, head, WAL replay,
//! flushed and compacted blocks, out-of-order overlay, beside floats of
//! the same series; and refusal of invalid histograms with nothing stored.

mod common;

use common::{labels, opts, write};
use sextant_storage::{
    Db, Error, Histogram, HistogramSample, Labels, Matcher, Options, WriteBatch,
};

fn counter(k: i64) -> Histogram {
    let k = k as f64;
    Histogram {
        schema: 1,
        zero_threshold: 1e-128,
        zero_count: k,
        positive: vec![(-1, k), (0, 2.0 * k), (3, k)],
        negative: vec![(2, k)],
        count: 6.0 * k,
        sum: 10.5 * k,
        ..Histogram::default()
    }
}

fn write_h(db: &Db, l: &Labels, ts: impl Iterator<Item = i64>) {
    let mut b = WriteBatch::default();
    b.add_histograms(
        l.clone(),
        ts.map(|t| HistogramSample::new(t, counter(t / 15_000)))
            .collect(),
    );
    db.write(&b).unwrap();
}

/// A series' floats as pairs, and its histograms.
type Read = (Vec<(i64, f64)>, Vec<HistogramSample>);

/// Every series named `h`.
fn read(db: &Db) -> Vec<Read> {
    db.select(&[Matcher::equal("__name__", "h")], i64::MIN, i64::MAX)
        .unwrap()
        .map(|s| {
            let s = s.unwrap();
            (s.samples.iter().map(|x| (x.t, x.v)).collect(), s.histograms)
        })
        .collect()
}

fn expected(ts: impl Iterator<Item = i64>) -> Vec<HistogramSample> {
    ts.map(|t| HistogramSample::new(t, counter(t / 15_000)))
        .collect()
}

#[test]
fn histograms_survive_replay_flush_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let l = labels("h", &[("job", "a")]);
    // 1,000 samples at 15 s: two 2 h partitions, several head and block runs.
    let ts = || (0..1000).map(|i| i * 15_000);
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        // Out of order: the second half first, then the first.
        write_h(&db, &l, ts().skip(500));
        write_h(&db, &l, ts().take(500));
        write(&db, &l, &[(7, 1.5)]);
        let got = read(&db);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, vec![(7, 1.5)]);
        assert_eq!(got[0].1, expected(ts()));
    }
    // Replayed from the WAL.
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(read(&db)[0].1, expected(ts()));
    db.flush().unwrap();
    assert!(db.stats().blocks.len() >= 2);
    assert_eq!(read(&db)[0].1, expected(ts()));
    // A later write of the same timestamp wins, across block and head.
    let mut b = WriteBatch::default();
    b.add_histograms(
        l.clone(),
        vec![
            HistogramSample::new(14_985_000, counter(7)),
            HistogramSample::new(14_970_000, counter(99)),
        ],
    );
    db.write(&b).unwrap();
    let mut want = expected(ts());
    want[999] = HistogramSample::new(14_985_000, counter(7));
    want[998] = HistogramSample::new(14_970_000, counter(99));
    assert_eq!(read(&db)[0].1, want);
    db.flush().unwrap();
    db.compact().unwrap();
    for block in &db.stats().blocks {
        assert!(block.meta.samples > 0);
    }
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    let got = read(&db);
    assert_eq!(got[0].0, vec![(7, 1.5)]);
    assert_eq!(got[0].1, want);
}

#[test]
fn invalid_histograms_are_refused_and_nothing_of_the_batch_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let good = labels("h", &[("job", "good")]);
    write_h(&db, &good, [0, 15_000].into_iter());
    let cases: [(&str, Histogram); 4] = [
        (
            "negative",
            Histogram {
                positive: vec![(0, -1.0)],
                ..counter(1)
            },
        ),
        (
            "schema",
            Histogram {
                schema: 9,
                ..counter(1)
            },
        ),
        (
            "threshold",
            Histogram {
                zero_threshold: -1.0,
                ..counter(1)
            },
        ),
        (
            "order",
            Histogram {
                positive: vec![(3, 1.0), (0, 1.0), (3, 1.0)],
                ..counter(1)
            },
        ),
    ];
    for (what, bad) in cases {
        let mut b = WriteBatch::default();
        b.add_histograms(
            labels("h", &[("job", "new")]),
            vec![HistogramSample::new(30_000, counter(2))],
        );
        b.add_histograms(good.clone(), vec![HistogramSample::new(30_000, bad)]);
        match db.write(&b) {
            Err(e @ Error::InvalidHistogram { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("job=\"good\""), "{what}: {msg}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    let got = read(&db);
    assert_eq!(got.len(), 1, "the refused batch created no series");
    assert_eq!(got[0].1, expected([0, 15_000].into_iter()));
    drop(db);
    let db = Db::open(dir.path(), Options { ..opts() }).unwrap();
    assert_eq!(read(&db)[0].1, expected([0, 15_000].into_iter()));
}
