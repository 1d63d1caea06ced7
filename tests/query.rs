//! PromQL through the embedding facade.

use sextant::{Db, Labels, Options, QueryExt, Sample, Value, WriteBatch};

#[test]
fn instant_and_range_queries_return_typed_results() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            background: false,
            ..Options::default()
        },
    )
    .unwrap();
    let mut b = WriteBatch::default();
    for (job, per_step) in [("a", 1.0), ("b", 3.0)] {
        let l = Labels::new([("__name__", "req_total"), ("job", job)]).unwrap();
        b.add(
            l,
            (0..=40)
                .map(|i| Sample::new(i * 15_000, i as f64 * per_step))
                .collect(),
        );
    }
    db.write(&b).unwrap();
    db.flush().unwrap();

    let v = db
        .query_instant("sum(rate(req_total[1m]))", 600_000)
        .unwrap();
    let Value::Vector(v) = v else { panic!("{v:?}") };
    assert_eq!(v.len(), 1);
    assert!((v[0].v - 4.0 / 15.0).abs() < 1e-9, "{}", v[0].v);

    let m = db
        .query_range("req_total{job=\"b\"} * 2", 0, 60_000, 30_000)
        .unwrap();
    let Value::Matrix(m) = m else { panic!("{m:?}") };
    assert_eq!(m.len(), 1);
    assert_eq!(
        m[0].points.iter().map(|p| (p.t, p.v)).collect::<Vec<_>>(),
        vec![(0, 0.0), (30_000, 12.0), (60_000, 24.0)]
    );
    assert!(
        m[0].labels.metric_name().is_none(),
        "arithmetic drops the metric name"
    );

    assert_eq!(
        db.query_instant("1 + 2 * 3", 0).unwrap(),
        Value::Scalar(7.0)
    );
    let err = db
        .query_instant("rate(req_total)", 0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1:1: parse error: expected type range vector"),
        "{err}"
    );
}
