//! Encode and decode speed of the chunk codecs on realistic series shapes.
//! `cargo bench --bench codecs`; figures are samples per second (of the
//! whole chunk, also for the windowed read).
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sextant_storage::Sample;
use sextant_storage::codec::{chunk, gorilla};

fn shapes(n: usize) -> Vec<(&'static str, Vec<Sample>)> {
    let t = |i: usize| 1_704_067_200_000 + 15_000 * i as i64;
    let mut c = 0.0;
    let counter = (0..n)
        .map(|i| {
            c += ((i * 7919) % 13) as f64;
            Sample::new(t(i), c)
        })
        .collect();
    let gauge = (0..n)
        .map(|i| Sample::new(t(i), 4096.0 * (70_000 + (i * 31) % 97) as f64))
        .collect();
    let ratio = (0..n)
        .map(|i| Sample::new(t(i), ((i as f64) * 0.37).sin() * 0.5 + 0.5))
        .collect();
    vec![
        ("counter", counter),
        ("gauge_4k_pages", gauge),
        ("full_precision", ratio),
    ]
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("codecs");
    g.sample_size(20);
    for (name, samples) in shapes(480) {
        g.throughput(Throughput::Elements(samples.len() as u64));
        let mut enc = Vec::new();
        chunk::encode(&samples, &mut enc);
        let mut gor = gorilla::Encoder::default();
        for s in &samples {
            gor.append(*s);
        }
        println!(
            "{name}: chunk codec {} B, gorilla {} B for {} samples",
            enc.len(),
            gor.bytes().len(),
            samples.len()
        );
        g.bench_with_input(BenchmarkId::new("chunk_encode", name), &samples, |b, s| {
            b.iter(|| {
                let mut out = Vec::with_capacity(1024);
                chunk::encode(s, &mut out);
                out
            })
        });
        g.bench_with_input(BenchmarkId::new("chunk_decode", name), &enc, |b, e| {
            b.iter(|| chunk::decode(e))
        });
        // What an instant query with a 5 m window reads: the last 20 of 480.
        let from = samples[samples.len() - 20].t;
        g.bench_with_input(BenchmarkId::new("chunk_window_5m", name), &enc, |b, e| {
            b.iter(|| {
                let mut out = Vec::new();
                chunk::decode_range(e, from, i64::MAX, &mut out).map(|()| out)
            })
        });
        g.bench_with_input(
            BenchmarkId::new("gorilla_encode", name),
            &samples,
            |b, s| {
                b.iter(|| {
                    let mut e = gorilla::Encoder::default();
                    for x in s {
                        e.append(*x);
                    }
                    e
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("gorilla_decode", name), &gor, |b, e| {
            b.iter(|| gorilla::decode(e.bytes(), e.count()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
