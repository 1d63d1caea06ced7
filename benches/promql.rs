//! PromQL range queries over 10k series × 24 h, evaluated at a 15 s step
//! (5,761 steps): a rate, a `sum by`, and a `histogram_quantile` over
//! classic buckets. `cargo bench --bench promql`.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{Criterion, criterion_group, criterion_main};
use sextant::{
    Db, Engine, EngineOptions, HOUR_MS, Labels, Options, Sample, Value, WriteBatch, parse,
};

const LE: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
];
const STEP: i64 = 15_000;

/// 100 services × 10 instances × 10 buckets = 10,000 series, 24 h at 15 s.
fn build(dir: &std::path::Path) -> Db {
    let db = Db::open(
        dir,
        Options {
            background: false,
            ..Options::default()
        },
    )
    .unwrap();
    let mut series = Vec::new();
    for svc in 0..100 {
        for inst in 0..10 {
            for (b, le) in LE.iter().enumerate() {
                let l = Labels::new([
                    ("__name__", "http_request_duration_seconds_bucket"),
                    ("service", format!("svc-{svc:03}").as_str()),
                    ("instance", format!("10.0.{svc}.{inst}:8080").as_str()),
                    ("le", le),
                ])
                .unwrap();
                series.push((l, (b + 1) as f64 * (1.0 + (svc % 7) as f64)));
            }
        }
    }
    let steps = 24 * HOUR_MS / STEP;
    for chunk in (0..=steps).collect::<Vec<_>>().chunks(240) {
        let mut batch = WriteBatch::default();
        for (l, per_step) in &series {
            batch.add(
                l.clone(),
                chunk
                    .iter()
                    .map(|k| Sample::new(k * STEP, (*k as f64 * per_step).floor()))
                    .collect(),
            );
        }
        db.write(&batch).unwrap();
    }
    db.flush().unwrap();
    db.compact().unwrap();
    db
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = build(dir.path());
    let mut g = c.benchmark_group("promql_range_24h_15s");
    g.sample_size(10);
    for (name, q) in [
        (
            "rate",
            "rate(http_request_duration_seconds_bucket{service=\"svc-001\"}[5m])",
        ),
        (
            "sum_by_rate",
            "sum by (service) (rate(http_request_duration_seconds_bucket[5m]))",
        ),
        (
            "histogram_quantile",
            "histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket[5m])))",
        ),
    ] {
        // The whole range of 10k series is 57.6M samples: raise the limit as
        // the bench harness does for Prometheus (--query.max-samples).
        let engine = Engine::new(
            &db,
            EngineOptions {
                max_samples: 500_000_000,
                ..EngineOptions::default()
            },
        );
        let expr = parse(q).unwrap();
        g.bench_function(name, |b| {
            b.iter(
                || match engine.range(&expr, 0, 24 * HOUR_MS, STEP).unwrap() {
                    Value::Matrix(m) => assert!(!m.is_empty()),
                    other => panic!("{other:?}"),
                },
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
