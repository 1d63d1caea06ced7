//! PromQL through the embedding facade.

use sextant::{Db, Labels, Options, QueryExt, Sample, Value, WriteBatch};

fn open(dir: &std::path::Path) -> Db {
    Db::open(
        dir,
        Options {
            background: false,
            ..Options::default()
        },
    )
    .unwrap()
}

#[test]
fn instant_and_range_queries_return_typed_results() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
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

#[test]
fn range_queries_across_chunks_equal_instant_queries_at_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut b = WriteBatch::default();
    for s in 0..3 {
        let l = Labels::new([("__name__", "c_total"), ("s", s.to_string().as_str())]).unwrap();
        b.add(
            l,
            (0..=4 * 240)
                .map(|i| Sample::new(i * 15_000, (i * (s + 1) + i % 7) as f64))
                .collect(),
        );
    }
    // A series with staleness markers and a gap.
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let l = Labels::new([("__name__", "c_total"), ("s", "stale")]).unwrap();
    b.add(
        l,
        (0..=4 * 240)
            .filter(|i| !(300..400).contains(i))
            .map(|i| Sample::new(i * 15_000, if i % 50 == 7 { stale } else { i as f64 }))
            .collect(),
    );
    db.write(&b).unwrap();
    db.flush().unwrap();
    let (start, end, step) = (300_000, 4 * 3_600_000, 60_000);
    for q in [
        "sum by (s) (rate(c_total[5m]))",
        "max_over_time(deriv(c_total[10m])[30m:1m])",
        "c_total @ 300 - c_total",
        "rate(c_total[5m])",
        "sum(last_over_time(c_total[2m] @ 600))",
        "count(changes(c_total[3m] offset 1m))",
        "avg by (s) (quantile_over_time(0.9, c_total[10m]))",
        "max(predict_linear(c_total[10m], 300))",
        "stddev without (s) (increase(c_total[7m]))",
        "last_over_time(c_total[1m])",
        "histogram_quantile(0.9, sum by (s) (rate(c_total[5m])))",
        "sum(rate(c_total[5m])) / count(rate(c_total[5m]))",
        "topk(2, rate(c_total[5m]))",
    ] {
        let Value::Matrix(m) = db.query_range(q, start, end, step).unwrap() else {
            panic!()
        };
        let mut t = start;
        while t <= end {
            let Value::Vector(v) = db.query_instant(q, t).unwrap() else {
                panic!()
            };
            for el in &v {
                let s = m
                    .iter()
                    .find(|s| s.labels == el.labels)
                    .unwrap_or_else(|| panic!("{q}: {} missing at {t}", el.labels));
                let p = s
                    .points
                    .iter()
                    .find(|p| p.t == t)
                    .unwrap_or_else(|| panic!("{q}: no point at {t}"));
                assert!(
                    (p.v - el.v).abs() <= 1e-9 * el.v.abs().max(1.0),
                    "{q} at {t}: {} vs {}",
                    p.v,
                    el.v
                );
            }
            let in_range = m
                .iter()
                .filter(|s| s.points.iter().any(|p| p.t == t))
                .count();
            assert_eq!(in_range, v.len(), "{q} at {t}");
            t += step;
        }
    }
}

#[test]
fn at_start_refers_to_the_query_start_in_every_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut b = WriteBatch::default();
    let l = Labels::new([("__name__", "g")]).unwrap();
    b.add(
        l,
        (0..=3 * 240)
            .map(|i| Sample::new(i * 15_000, i as f64))
            .collect(),
    );
    db.write(&b).unwrap();
    let Value::Matrix(m) = db
        .query_range("g @ start()", 60_000, 3 * 3_600_000, 60_000)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(m[0].points.len(), 180);
    assert!(
        m[0].points.iter().all(|p| p.v == 4.0),
        "value at 60 s is sample 4"
    );
}

#[test]
fn query_limits_give_clear_errors() {
    use sextant::{Engine, EngineOptions, parse};
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut b = WriteBatch::default();
    for s in 0..5 {
        let l = Labels::new([("__name__", "m"), ("s", s.to_string().as_str())]).unwrap();
        b.add(
            l,
            (0..100)
                .map(|i| Sample::new(i * 15_000, i as f64))
                .collect(),
        );
    }
    db.write(&b).unwrap();
    let e = parse("sum(rate(m[5m]))").unwrap();
    let limited = |opts: EngineOptions| {
        Engine::new(&db, opts)
            .range(&e, 0, 1_500_000, 15_000)
            .unwrap_err()
            .to_string()
    };
    let err = limited(EngineOptions {
        max_series: 4,
        ..EngineOptions::default()
    });
    assert!(
        err.contains("more than 4 series") && err.contains("max_series"),
        "{err}"
    );
    let err = limited(EngineOptions {
        max_samples: 100,
        ..EngineOptions::default()
    });
    assert!(err.contains("too many samples"), "{err}");
    let err = limited(EngineOptions {
        timeout: Some(std::time::Duration::ZERO),
        ..EngineOptions::default()
    });
    assert!(err.contains("timed out"), "{err}");
    // Within the limits the same query works.
    assert!(
        Engine::new(&db, EngineOptions::default())
            .range(&e, 0, 1_500_000, 15_000)
            .is_ok()
    );
}

#[test]
fn times_evaluation_cannot_represent_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let l = Labels::new([("__name__", "up")]).unwrap();
    let mut b = WriteBatch::default();
    b.add(l, vec![Sample::new(60_000, 1.0)]);
    db.write(&b).unwrap();
    for (expr, t) in [
        ("up", i64::MIN),
        ("up", i64::MAX),
        ("rate(up[5m] offset 1y)", i64::MIN + 1),
        ("up offset 290000000y", 60_000),
    ] {
        let e = db.query_instant(expr, t).unwrap_err();
        assert!(
            matches!(e, sextant_query::Error::OutOfRange(_)),
            "{expr} at {t}: {e}"
        );
    }
    let e = db
        .query_range("up", i64::MAX - 10, i64::MAX, 1)
        .unwrap_err();
    assert!(matches!(e, sextant_query::Error::OutOfRange(_)), "{e}");
    // Ordinary times still evaluate.
    let Value::Vector(v) = db.query_instant("up", 60_000).unwrap() else {
        panic!()
    };
    assert_eq!(v.len(), 1);
}

/// The deepest trees the parser accepts, of every shape that nests, parse
/// and evaluate on a thread of `sextant_query::STACK_BYTES` (as the
/// server's query threads are); one level more is a clear error.
#[test]
fn deepest_accepted_queries_evaluate_within_the_documented_stack() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut b = WriteBatch::default();
    b.add(
        Labels::new([("__name__", "x")]).unwrap(),
        (0..=40).map(|i| Sample::new(i * 15_000, 1.0)).collect(),
    );
    db.write(&b).unwrap();
    let db = std::sync::Arc::new(db);
    let run = {
        let db = std::sync::Arc::clone(&db);
        move || {
            let shapes: [fn(usize) -> String; 5] = [
                |n| vec!["1"; n].join("+"),
                |n| vec!["x"; n].join(" or "),
                |n| format!("{}x{}", "abs(".repeat(n - 1), ")".repeat(n - 1)),
                |n| format!("{}x{}", "(".repeat(n - 1), ")".repeat(n - 1)),
                |n| format!("{}x", "-".repeat(n - 1)),
            ];
            for (i, shape) in shapes.iter().enumerate() {
                let q = shape(256);
                db.query_range(&q, 0, 600_000, 15_000)
                    .unwrap_or_else(|e| panic!("shape {i}: {e}"));
                let err = db.query_instant(&shape(257), 0).unwrap_err();
                assert!(
                    err.to_string().contains("nested too deeply"),
                    "shape {i}: {err}"
                );
            }
        }
    };
    std::thread::Builder::new()
        .stack_size(sextant_query::STACK_BYTES)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}

/// One way to run a query: `Engine::run` chooses instant, records over a
/// window or a stepped range, applies Prometheus' range checks, and keeps
/// the warnings in every mode (range queries dropped them before).
#[test]
fn engine_run_keeps_warnings_for_range_queries_and_checks_ranges() {
    use sextant::{Engine, EngineOptions, When, parse};
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut b = WriteBatch::default();
    b.add(
        Labels::new([("__name__", "x")]).unwrap(),
        (0..=40)
            .map(|i| Sample::new(i * 15_000, i as f64))
            .collect(),
    );
    db.write(&b).unwrap();
    let engine = Engine::new(&db, EngineOptions::default());
    let q = parse("quantile(2, x)").unwrap();
    let range = engine
        .run(
            &q,
            When::Range {
                start: 0,
                end: 600_000,
                step: Some(60_000),
            },
        )
        .unwrap();
    assert!(matches!(range.value, Value::Matrix(_)));
    assert!(
        range.warnings.iter().any(|w| w.contains("quantile")),
        "{:?}",
        range.warnings
    );
    let instant = engine.run(&q, When::Instant(600_000)).unwrap();
    assert_eq!(instant.warnings, range.warnings);
    for (when, want) in [
        (
            When::Range {
                start: 10,
                end: 0,
                step: Some(1),
            },
            "before start",
        ),
        (
            When::Range {
                start: 0,
                end: 10,
                step: Some(0),
            },
            "step",
        ),
        (
            When::Range {
                start: 0,
                end: 1_000_000,
                step: Some(1),
            },
            "11,000 points",
        ),
        (
            When::Range {
                start: 0,
                end: 10,
                step: None,
            },
            "needs step",
        ),
    ] {
        let e = engine.run(&q, when).unwrap_err().to_string();
        assert!(e.contains(want), "{when:?}: {e}");
    }
}
