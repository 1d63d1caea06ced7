//! What PromQL reads out of one histogram: quantiles, the fraction of
//! observations between two values, the mean and the spread.
//!
//! Within a bucket, observations are assumed spread the way a finer
//! histogram of the same kind would spread them: evenly on a log scale in
//! exponential buckets (so the middle of `(1, 2]` is √2), evenly in custom
//! buckets and in the zero bucket. A histogram with only positive buckets
//! has 0 as the zero bucket's lower end (and the mirror for negative).

use crate::{Bucket, Histogram};

/// A remark about a result, for PromQL's info annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// NaN observations (counted, in no bucket) may have pulled the result
    /// down.
    NanSkew,
    /// The quantile fell among the NaN observations: the result is NaN.
    NanResult,
}

impl Histogram {
    /// The zero bucket's bounds when a histogram lies on one side of zero.
    /// `custom_too`: a custom bucket spanning zero is cut at zero as well
    /// (as `histogram_fraction` does; `histogram_quantile` settles custom
    /// buckets itself).
    fn natural_zero(&self, b: &mut Bucket, custom_too: bool) {
        if (self.custom_buckets() && !custom_too) || !b.straddles_zero() {
            return;
        }
        if self.negative.is_empty() && !self.positive.is_empty() {
            b.lower = 0.0;
        } else if self.positive.is_empty() && !self.negative.is_empty() {
            b.upper = 0.0;
        }
    }

    /// Buckets hold fewer observations than `count`: NaN observations.
    fn nan_observations(&self, buckets: &[Bucket]) -> bool {
        self.sum.is_nan() && buckets.iter().map(|b| b.count).sum::<f64>() < self.count
    }

    /// The φ-quantile (`histogram_quantile`): −Inf below 0, +Inf above 1,
    /// NaN for NaN or an empty histogram.
    pub fn quantile(&self, q: f64) -> (f64, Option<Note>) {
        if q < 0.0 {
            return (f64::NEG_INFINITY, None);
        }
        if q > 1.0 {
            return (f64::INFINITY, None);
        }
        if self.count == 0.0 || q.is_nan() {
            return (f64::NAN, None);
        }
        let buckets = self.buckets_ascending();
        // From the nearer end: the answer is the same, the float error
        // smaller. NaN observations sit past the top, so a histogram with
        // them is always walked from the bottom.
        let forward = self.sum.is_nan() || q < 0.5;
        let rank = if forward {
            q * self.count
        } else {
            (1.0 - q) * self.count
        };
        let mut seen = 0.0;
        let mut hit: Option<Bucket> = None;
        let order: Box<dyn Iterator<Item = &Bucket>> = if forward {
            Box::new(buckets.iter())
        } else {
            Box::new(buckets.iter().rev())
        };
        let mut last = None;
        for b in order {
            if b.count == 0.0 {
                continue;
            }
            last = Some(*b);
            seen += b.count;
            if seen >= rank {
                hit = Some(*b);
                break;
            }
        }
        let Some(mut b) = hit.or(last) else {
            // Observations, but in no bucket: all of them NaN.
            return (f64::NAN, self.sum.is_nan().then_some(Note::NanResult));
        };
        self.natural_zero(&mut b, false);
        if self.custom_buckets() {
            if b.lower == f64::NEG_INFINITY {
                if b.upper <= 0.0 {
                    return (b.upper, None);
                }
                b.lower = 0.0;
            } else if b.upper == f64::INFINITY {
                return (b.lower, None);
            }
        }
        let seen = seen.min(self.count);
        if seen < rank {
            if self.sum.is_nan() {
                return (f64::NAN, Some(Note::NanResult));
            }
            return (b.upper, None);
        }
        let into = if forward {
            rank - (seen - b.count)
        } else {
            seen - rank
        };
        let note = self.nan_observations(&buckets).then_some(Note::NanSkew);
        let f = into / b.count;
        let v = if self.custom_buckets() || b.straddles_zero() {
            b.lower + (b.upper - b.lower) * f
        } else {
            let (lo, hi) = (b.lower.abs().log2(), b.upper.abs().log2());
            if b.lower > 0.0 {
                (lo + (hi - lo) * f).exp2()
            } else {
                -(hi + (lo - hi) * (1.0 - f)).exp2()
            }
        };
        (v, note)
    }

    /// The share of observations between `lower` and `upper`
    /// (`histogram_fraction`); NaN for an empty histogram or NaN bounds, 0
    /// when `lower >= upper`.
    pub fn fraction(&self, lower: f64, upper: f64) -> (f64, Option<Note>) {
        if self.count == 0.0 || lower.is_nan() || upper.is_nan() {
            return (f64::NAN, None);
        }
        if lower >= upper {
            return (0.0, None);
        }
        let buckets = self.buckets_ascending();
        let custom = self.custom_buckets();
        let (mut rank, mut lo_rank, mut hi_rank) = (0.0, None, None);
        for b in &buckets {
            let mut b = *b;
            let zero = b.straddles_zero();
            if zero {
                self.natural_zero(&mut b, true);
            }
            let rank_at = |v: f64| -> f64 {
                if custom || zero {
                    // No spread can be assumed in an infinite bucket.
                    if b.lower == f64::NEG_INFINITY {
                        return b.count;
                    }
                    rank + b.count * b.fraction_below(v, true)
                } else {
                    rank + b.count * b.fraction_below(v, false)
                }
            };
            if lo_rank.is_none() && b.lower >= lower {
                lo_rank = Some(rank);
            }
            if hi_rank.is_none() && b.lower >= upper {
                hi_rank = Some(rank);
            }
            if lo_rank.is_none() && b.lower < lower && b.upper > lower {
                lo_rank = Some(rank_at(lower));
            }
            if hi_rank.is_none() && b.lower < upper && b.upper > upper {
                hi_rank = Some(rank_at(upper));
            }
            if lo_rank.is_some() && hi_rank.is_some() {
                break;
            }
            rank += b.count;
        }
        let (total, note) = if self.sum.is_nan() {
            let in_buckets: f64 = buckets.iter().map(|b| b.count).sum();
            (
                in_buckets,
                (in_buckets < self.count).then_some(Note::NanSkew),
            )
        } else {
            (self.count, None)
        };
        let lo = lo_rank.unwrap_or(total).min(total);
        let hi = hi_rank.unwrap_or(total).min(total);
        ((hi - lo) / self.count, note)
    }

    /// The mean observation (`histogram_avg`).
    pub fn mean(&self) -> f64 {
        self.sum / self.count
    }

    /// The variance of the observations (`histogram_stdvar`), each bucket's
    /// observations taken at its middle (geometric for exponential
    /// buckets, arithmetic for custom ones, 0 in the zero bucket).
    pub fn variance(&self) -> f64 {
        let mean = self.mean();
        let mut total = 0.0;
        for b in self.buckets_ascending() {
            if b.count == 0.0 {
                continue;
            }
            let middle = if self.custom_buckets() {
                (b.lower + b.upper) / 2.0
            } else if b.straddles_zero() {
                0.0
            } else {
                (b.lower * b.upper).sqrt().copysign(b.upper)
            };
            total += b.count * (middle - mean) * (middle - mean);
        }
        total / self.count
    }
}
