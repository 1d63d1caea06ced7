//! Bucket bounds, and the buckets of a histogram in value order (what
//! quantiles, fractions and variances walk).

use crate::Histogram;

/// One bucket with its bounds. Exponential buckets include their upper
/// bound (positive) or lower bound (negative); the zero bucket is
/// `[-threshold, threshold]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Observations in it.
    pub count: f64,
}

impl Bucket {
    /// Whether this is (or spans zero like) the zero bucket.
    pub fn straddles_zero(&self) -> bool {
        self.lower <= 0.0 && self.upper >= 0.0
    }

    /// The share of the bucket below `v` (a value inside it): linear for
    /// custom buckets and the zero bucket, on a log scale for exponential
    /// buckets (where their bounds are evenly spaced).
    pub fn fraction_below(&self, v: f64, linear: bool) -> f64 {
        if linear {
            return (v - self.lower) / (self.upper - self.lower);
        }
        let (lo, hi, x) = (
            self.lower.abs().log2(),
            self.upper.abs().log2(),
            v.abs().log2(),
        );
        if v > 0.0 {
            (x - lo) / (hi - lo)
        } else {
            1.0 - (x - hi) / (lo - hi)
        }
    }
}

/// The upper bound of positive bucket `index` at exponential `schema`:
/// `2^(index·2^-schema)`, exact for schemas ≤ 0.
pub fn upper_bound(index: i32, schema: i32) -> f64 {
    if schema <= 0 {
        let e = i64::from(index) << (-schema);
        return pow2(e);
    }
    let per = 1i64 << schema;
    let (whole, frac) = (
        i64::from(index).div_euclid(per),
        i64::from(index).rem_euclid(per),
    );
    pow2(whole) * root_of_two(frac, schema)
}

/// `2^(frac / 2^schema)` rounded to the nearest float (for `0 <= frac <
/// 2^schema`), so bounds print exactly as Prometheus prints them: `exp2`
/// may be off by a unit in the last place, so its neighbours are tried
/// too, each raised back to the power `2^schema` in double-double
/// arithmetic and compared with `2^frac`.
fn root_of_two(frac: i64, schema: i32) -> f64 {
    let guess = (frac as f64 / (1i64 << schema) as f64).exp2();
    let target = pow2(frac);
    let miss = |y: f64| -> f64 {
        // (hi, lo) squared `schema` times: y^(2^schema) to ~2^-100.
        let (mut hi, mut lo) = (y, 0.0f64);
        for _ in 0..schema {
            let p = hi * hi;
            let e = hi.mul_add(hi, -p) + 2.0 * hi * lo;
            hi = p + e;
            lo = e - (hi - p);
        }
        ((hi - target) + lo).abs()
    };
    [
        f64::from_bits(guess.to_bits() - 1),
        guess,
        f64::from_bits(guess.to_bits() + 1),
    ]
    .into_iter()
    .min_by(|a, b| miss(*a).total_cmp(&miss(*b)))
    .unwrap_or(guess)
}

/// The bucket indexes whose bounds are floats at exponential `schema`
/// (clamped to the valid schemas): beyond them every bound is 0 or +Inf.
pub fn index_range(schema: i32) -> (i32, i32) {
    let schema = schema.clamp(crate::MIN_SCHEMA, crate::MAX_SCHEMA);
    if schema >= 0 {
        (-(1075 << schema), 1024 << schema)
    } else {
        let by = -schema;
        (-(1075 >> by) - 1, (1024 >> by) + 1)
    }
}

/// 2^e for any integer exponent (0 and +Inf beyond f64's range).
fn pow2(e: i64) -> f64 {
    if e > 1023 {
        f64::INFINITY
    } else if e < -1074 {
        0.0
    } else {
        (e as f64).exp2()
    }
}

/// Bounds of custom bucket `j`: after the previous bound (or −Inf), up
/// to its own (or +Inf).
fn custom_bounds(values: &[f64], j: i32) -> (f64, f64) {
    let j = j.max(0) as usize;
    let lower = if j == 0 {
        f64::NEG_INFINITY
    } else {
        values.get(j - 1).copied().unwrap_or(f64::INFINITY)
    };
    (lower, values.get(j).copied().unwrap_or(f64::INFINITY))
}

impl Histogram {
    /// Bounds of positive bucket `index` (or custom bucket `index`).
    pub fn positive_bounds(&self, index: i32) -> (f64, f64) {
        if self.custom_buckets() {
            return custom_bounds(&self.custom_values, index);
        }
        (
            upper_bound(index - 1, self.schema),
            upper_bound(index, self.schema),
        )
    }

    /// Every bucket in value order: negative buckets from the most
    /// negative, the zero bucket (when it holds anything), the positive
    /// buckets. Empty buckets are included where listed.
    pub fn buckets_ascending(&self) -> Vec<Bucket> {
        let mut out = Vec::with_capacity(self.negative.len() + self.positive.len() + 1);
        for &(i, count) in self.negative.iter().rev() {
            let (lo, hi) = self.positive_bounds(i);
            out.push(Bucket {
                lower: -hi,
                upper: -lo,
                count,
            });
        }
        if self.zero_count != 0.0 && !self.custom_buckets() {
            out.push(Bucket {
                lower: -self.zero_threshold,
                upper: self.zero_threshold,
                count: self.zero_count,
            });
        }
        for &(i, count) in &self.positive {
            let (lower, upper) = self.positive_bounds(i);
            out.push(Bucket {
                lower,
                upper,
                count,
            });
        }
        out
    }
}
