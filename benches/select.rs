//! Select latency: one series over 24 h (twelve 2 h blocks compacted) and
//! 10k series over 1 h, from blocks. `cargo bench --bench select`.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{Criterion, criterion_group, criterion_main};
use sextant::{Db, HOUR_MS, Labels, Matcher, Options, Sample, WriteBatch};

fn build(dir: &std::path::Path) -> Db {
    let db = Db::open(
        dir,
        Options {
            background: false,
            ..Options::default()
        },
    )
    .unwrap();
    let one = Labels::new([("__name__", "long"), ("job", "a")]).unwrap();
    for h in 0..24i64 {
        let mut b = WriteBatch::default();
        b.add(
            one.clone(),
            (0..240)
                .map(|i| Sample::new(h * HOUR_MS + i * 15_000, (h * 240 + i) as f64))
                .collect(),
        );
        db.write(&b).unwrap();
    }
    db.flush().unwrap();
    let start = 24 * HOUR_MS;
    for s in 0..10_000 {
        let l = Labels::new([
            ("__name__", "wide"),
            ("pod", &format!("pod-{s:05}")),
            ("job", "b"),
        ])
        .unwrap();
        let mut b = WriteBatch::default();
        b.add(
            l,
            (0..240)
                .map(|i| Sample::new(start + i * 15_000, (s * i) as f64 * 0.25))
                .collect(),
        );
        db.write(&b).unwrap();
    }
    db.flush().unwrap();
    db.compact().unwrap();
    db
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = build(dir.path());
    let mut g = c.benchmark_group("select");
    g.sample_size(20);
    g.bench_function("1_series_24h", |b| {
        b.iter(|| {
            let n: usize = db
                .select(&[Matcher::equal("__name__", "long")], 0, 24 * HOUR_MS)
                .unwrap()
                .map(|s| s.unwrap().samples.len())
                .sum();
            assert_eq!(n, 5760);
        })
    });
    g.bench_function("10k_series_1h", |b| {
        b.iter(|| {
            let n: usize = db
                .select(
                    &[Matcher::equal("__name__", "wide")],
                    24 * HOUR_MS,
                    25 * HOUR_MS,
                )
                .unwrap()
                .map(|s| s.unwrap().samples.len())
                .sum();
            assert_eq!(n, 10_000 * 240);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
