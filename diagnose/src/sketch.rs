//! Latency sketches: log-spaced buckets with a bounded relative error, so
//! a node's or an edge's latency quantiles are cheap to keep, merge (per
//! hour, per block) and read for weeks.

use serde::Serialize;

/// Growth factor between bucket bounds: quantiles are within ±2% of the
/// true value.
const GAMMA: f64 = 1.04;
/// Smallest latency told apart, in seconds (1 µs); anything below is in
/// bucket 0.
const MIN_SECS: f64 = 1e-6;

/// A mergeable latency histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    /// (bucket, count), sorted by bucket.
    buckets: Vec<(u16, u64)>,
    count: u64,
    sum: f64,
}

fn bucket(secs: f64) -> u16 {
    if secs.is_nan() || secs <= MIN_SECS {
        return 0;
    }
    let b = ((secs / MIN_SECS).ln() / GAMMA.ln()).ceil();
    b.clamp(1.0, f64::from(u16::MAX)) as u16
}

/// The value a bucket stands for: the geometric middle of its bounds.
fn value(b: u16) -> f64 {
    if b == 0 {
        return MIN_SECS;
    }
    MIN_SECS * GAMMA.powf(f64::from(b) - 0.5)
}

impl Sketch {
    /// Adds one observation, in seconds.
    pub fn add(&mut self, secs: f64) {
        self.add_n(secs, 1);
    }

    /// Adds `n` observations of `secs`.
    pub fn add_n(&mut self, secs: f64, n: u64) {
        if n == 0 || !secs.is_finite() {
            return;
        }
        let b = bucket(secs);
        match self.buckets.binary_search_by_key(&b, |&(k, _)| k) {
            Ok(i) => self.buckets[i].1 += n,
            Err(i) => self.buckets.insert(i, (b, n)),
        }
        self.count += n;
        self.sum += secs.max(0.0) * n as f64;
    }

    /// Adds everything `other` holds.
    pub fn merge(&mut self, other: &Sketch) {
        for &(b, n) in &other.buckets {
            match self.buckets.binary_search_by_key(&b, |&(k, _)| k) {
                Ok(i) => self.buckets[i].1 += n,
                Err(i) => self.buckets.insert(i, (b, n)),
            }
        }
        self.count += other.count;
        self.sum += other.sum;
    }

    /// Observations held.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean, in seconds (`None` when empty).
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// The `q` quantile (0–1), in seconds (`None` when empty).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.count - 1) as f64).round() as u64;
        let mut seen = 0;
        for &(b, n) in &self.buckets {
            seen += n;
            if seen > rank {
                return Some(value(b));
            }
        }
        self.buckets.last().map(|&(b, _)| value(b))
    }

    /// The summary the APIs show.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            mean: self.mean(),
            p50: self.quantile(0.5),
            p90: self.quantile(0.9),
            p99: self.quantile(0.99),
        }
    }
}

/// Latency quantiles in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Mean.
    pub mean: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn quantiles_are_within_the_relative_error(
            mut xs in proptest::collection::vec(1e-5f64..100.0, 1..300),
            q in 0.0f64..1.0,
        ) {
            let mut s = Sketch::default();
            for &x in &xs {
                s.add(x);
            }
            xs.sort_by(f64::total_cmp);
            let exact = xs[(q * (xs.len() - 1) as f64).round() as usize];
            let got = s.quantile(q).unwrap();
            prop_assert!((got / exact - 1.0).abs() <= 0.021, "{got} vs {exact}");
        }

        #[test]
        fn merging_equals_adding_everything(
            a in proptest::collection::vec(0.0f64..10.0, 0..50),
            b in proptest::collection::vec(0.0f64..10.0, 0..50),
        ) {
            let (mut sa, mut sb, mut all) = (Sketch::default(), Sketch::default(), Sketch::default());
            for &x in &a { sa.add(x); all.add(x); }
            for &x in &b { sb.add(x); all.add(x); }
            sa.merge(&sb);
            prop_assert_eq!(&sa.buckets, &all.buckets);
            prop_assert_eq!(sa.count(), all.count());
        }
    }
}
