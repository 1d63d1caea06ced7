//! Helpers shared by the storage tests.
#![allow(dead_code)]

use sextant_storage::{Db, Labels, Matcher, Options, Sample, WriteBatch};

pub fn labels(name: &str, extra: &[(&str, &str)]) -> Labels {
    Labels::new(std::iter::once(("__name__", name)).chain(extra.iter().copied())).unwrap()
}

pub fn opts() -> Options {
    Options {
        background: false,
        ..Options::default()
    }
}

pub fn write(db: &Db, l: &Labels, samples: &[(i64, f64)]) {
    let mut b = WriteBatch::default();
    b.add(
        l.clone(),
        samples.iter().map(|(t, v)| Sample::new(*t, *v)).collect(),
    );
    db.write(&b).unwrap();
}

/// All samples of `name` as (labels, samples).
pub fn read_all(db: &Db, name: &str) -> Vec<(Labels, Vec<(i64, f64)>)> {
    read_range(db, name, i64::MIN, i64::MAX)
}

/// The samples of `name` in `[start, end]` as (labels, samples).
#[allow(dead_code)] // not every test binary that includes `common` reads windows
pub fn read_range(db: &Db, name: &str, start: i64, end: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
    db.select(&[Matcher::equal("__name__", name)], start, end)
        .unwrap()
        .map(|s| {
            let s = s.unwrap();
            (s.labels, s.samples.iter().map(|x| (x.t, x.v)).collect())
        })
        .collect()
}
