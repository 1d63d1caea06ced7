//! Arithmetic on histograms: scaling, adding and subtracting (bringing
//! both to a common resolution and zero bucket first), compaction, and
//! counter-reset detection for `rate` and friends.

use crate::{CounterReset, Error, Histogram, Result};

/// What combining two histograms had to settle, for the annotations
/// PromQL attaches to its answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Combined {
    /// One side said "counter reset" and the other "not a reset".
    pub hint_collision: bool,
    /// The custom bucket bounds differed; the result keeps only the bounds
    /// both had.
    pub bounds_reconciled: bool,
}

/// Bucket index `i` of a schema `by` steps finer, at the coarser schema:
/// `ceil(i / 2^by)`, since bucket `i` ends at `2^(i·2^-s)`.
fn coarser_index(i: i32, by: u32) -> i32 {
    let d = 1i64 << by;
    (i64::from(i) + d - 1).div_euclid(d) as i32
}

/// Sums `(index, count)` pairs into ascending, unique indexes.
fn merge(mut v: Vec<(i32, f64)>) -> Vec<(i32, f64)> {
    v.sort_by_key(|b| b.0);
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(v.len());
    for (i, c) in v {
        match out.last_mut() {
            Some(last) if last.0 == i => last.1 += c,
            _ => out.push((i, c)),
        }
    }
    out
}

impl Histogram {
    /// Multiplies every count and the sum by `f`.
    pub fn scale(&mut self, f: f64) {
        self.count *= f;
        self.sum *= f;
        self.zero_count *= f;
        for b in self.positive.iter_mut().chain(self.negative.iter_mut()) {
            b.1 *= f;
        }
    }

    /// Lowers the resolution to `schema` (coarser), merging buckets.
    /// Custom-bucket histograms and finer targets are left as they are.
    pub fn reduce_resolution(&mut self, schema: i32) {
        if self.custom_buckets() || schema >= self.schema {
            return;
        }
        let by = (self.schema - schema) as u32;
        for side in [&mut self.positive, &mut self.negative] {
            let v = std::mem::take(side);
            *side = merge(
                v.into_iter()
                    .map(|(i, c)| (coarser_index(i, by), c))
                    .collect(),
            );
        }
        self.schema = schema;
    }

    /// The zero threshold this histogram would need to widen to so that
    /// its zero bucket ends at `t` or at a bucket boundary beyond it (a
    /// bucket straddling the threshold joins the zero bucket whole).
    fn widened_threshold(&self, mut t: f64) -> f64 {
        if t <= self.zero_threshold || self.custom_buckets() {
            return t.max(self.zero_threshold);
        }
        for side in [&self.positive, &self.negative] {
            for &(i, _) in side.iter() {
                let (lo, hi) = self.positive_bounds(i);
                if lo >= t {
                    break;
                }
                if hi > t {
                    t = hi;
                }
            }
        }
        t
    }

    /// Moves every bucket at or below `t` into the zero bucket and sets the
    /// threshold to `t` (which `widened_threshold` made a boundary).
    fn set_zero_threshold(&mut self, t: f64) {
        if t <= self.zero_threshold || self.custom_buckets() {
            return;
        }
        let schema = self.schema;
        let mut moved = 0.0;
        for side in [&mut self.positive, &mut self.negative] {
            side.retain(|&(i, c)| {
                let inside = crate::bucket::upper_bound(i, schema) <= t;
                if inside {
                    moved += c;
                }
                !inside
            });
        }
        self.zero_count += moved;
        self.zero_threshold = t;
    }

    /// Brings `self` and `other` to one resolution and one zero bucket (or
    /// one set of custom bounds), so their buckets line up index by index.
    fn align(&mut self, other: &mut Histogram) -> Result<bool> {
        match (self.custom_buckets(), other.custom_buckets()) {
            (true, true) => Ok(self.reconcile_bounds(other)),
            (false, false) => {
                let schema = self.schema.min(other.schema);
                self.reduce_resolution(schema);
                other.reduce_resolution(schema);
                let mut t = self.zero_threshold.max(other.zero_threshold);
                loop {
                    let next = other.widened_threshold(self.widened_threshold(t));
                    if next == t {
                        break;
                    }
                    t = next;
                }
                self.set_zero_threshold(t);
                other.set_zero_threshold(t);
                Ok(false)
            }
            _ => Err(Error::Incompatible(
                "a histogram with custom buckets cannot be combined with an exponential one".into(),
            )),
        }
    }

    /// Custom bounds made common: only the bounds both have are kept, each
    /// bucket merged into the kept bucket containing it. Whether anything
    /// changed.
    fn reconcile_bounds(&mut self, other: &mut Histogram) -> bool {
        if self.custom_values == other.custom_values {
            return false;
        }
        let common: Vec<f64> = self
            .custom_values
            .iter()
            .copied()
            .filter(|v| other.custom_values.contains(v))
            .collect();
        for h in [&mut *self, &mut *other] {
            let remap = |j: i32| -> i32 {
                let upper = h.custom_values.get(j.max(0) as usize).copied();
                match upper {
                    Some(u) => common.iter().position(|c| *c >= u).unwrap_or(common.len()) as i32,
                    None => common.len() as i32,
                }
            };
            let v: Vec<(i32, f64)> = h.positive.iter().map(|&(j, c)| (remap(j), c)).collect();
            h.positive = merge(v);
            h.custom_values = common.clone();
        }
        true
    }

    /// `self + other`: counts, sums and buckets added after bringing both
    /// to the coarser resolution and the wider zero bucket.
    pub fn add(&mut self, other: &Histogram) -> Result<Combined> {
        let mut other = other.clone();
        let bounds_reconciled = self.align(&mut other)?;
        // The sum's hint: a gauge makes a gauge, otherwise any doubt (or
        // a reset meeting a non-reset) makes it unknown.
        let hint_collision = matches!(
            (self.hint, other.hint),
            (CounterReset::Reset, CounterReset::NotReset)
                | (CounterReset::NotReset, CounterReset::Reset)
        );
        self.hint = match (self.hint, other.hint) {
            (a, b) if a == b => a,
            (CounterReset::Gauge, _) | (_, CounterReset::Gauge) => CounterReset::Gauge,
            _ => CounterReset::Unknown,
        };
        self.count += other.count;
        self.sum += other.sum;
        self.zero_count += other.zero_count;
        for (mine, theirs) in [
            (&mut self.positive, other.positive),
            (&mut self.negative, other.negative),
        ] {
            let mut v = std::mem::take(mine);
            v.extend(theirs);
            *mine = merge(v);
        }
        Ok(Combined {
            hint_collision,
            bounds_reconciled,
        })
    }

    /// The sum of `hs` (at least one), with compensated summation of every
    /// field: the layout (resolution, zero bucket, common custom bounds)
    /// and hint are those adding them one by one gives, then each count,
    /// bucket and the sum is added up with [`crate::KahanSum`].
    pub fn sum_of(hs: &[&Histogram]) -> Result<(Histogram, Combined)> {
        let Some((first, rest)) = hs.split_first() else {
            return Ok((Histogram::default(), Combined::default()));
        };
        let mut layout = (*first).clone();
        let mut combined = Combined::default();
        for h in rest {
            let c = layout.add(h)?;
            combined.hint_collision |= c.hint_collision;
            combined.bounds_reconciled |= c.bounds_reconciled;
        }
        if rest.is_empty() {
            return Ok((layout, combined));
        }
        let (mut count, mut sum, mut zero) = (
            crate::KahanSum::default(),
            crate::KahanSum::default(),
            crate::KahanSum::default(),
        );
        let mut pos: std::collections::BTreeMap<i32, crate::KahanSum> = Default::default();
        let mut neg: std::collections::BTreeMap<i32, crate::KahanSum> = Default::default();
        for h in hs {
            let mut x = (*h).clone();
            let mut target = layout.clone();
            target.align(&mut x)?;
            count.add(x.count);
            sum.add(x.sum);
            zero.add(x.zero_count);
            for (side, map) in [(&x.positive, &mut pos), (&x.negative, &mut neg)] {
                for &(i, c) in side {
                    map.entry(i).or_default().add(c);
                }
            }
        }
        let values = |m: std::collections::BTreeMap<i32, crate::KahanSum>| -> Vec<(i32, f64)> {
            m.into_iter().map(|(i, k)| (i, k.value())).collect()
        };
        let total = Histogram {
            count: count.value(),
            sum: sum.value(),
            zero_count: zero.value(),
            positive: values(pos),
            negative: values(neg),
            ..layout
        };
        Ok((total, combined))
    }

    /// `self - other` (buckets may go negative: a difference of snapshots,
    /// not a histogram of observations).
    pub fn sub(&mut self, other: &Histogram) -> Result<Combined> {
        let mut neg = other.clone();
        neg.scale(-1.0);
        self.add(&neg)
    }

    /// Drops empty buckets.
    pub fn compact(&mut self) {
        self.positive.retain(|b| b.1 != 0.0);
        self.negative.retain(|b| b.1 != 0.0);
    }

    /// Whether going from `prev` to `self` reset the counter: the hint
    /// when it says so, else any count that went down once both are seen
    /// at the same resolution and zero bucket (or the custom bounds both
    /// have), or a change no counter can make (a finer schema, a narrower
    /// zero bucket, custom buckets replacing exponential ones).
    pub fn is_reset_after(&self, prev: &Histogram) -> bool {
        match self.hint {
            CounterReset::Reset => return true,
            CounterReset::NotReset => return false,
            CounterReset::Gauge | CounterReset::Unknown => {}
        }
        if self.custom_buckets()
            && prev.custom_buckets()
            && self.custom_values != prev.custom_values
            && self.count >= prev.count
        {
            // Other bounds: a reset only if a bucket both have went down.
            let (mut now, mut before) = (self.clone(), prev.clone());
            now.reconcile_bounds(&mut before);
            return now.decreased_from(&before);
        }
        if self.custom_buckets() != prev.custom_buckets()
            || self.schema > prev.schema
            || self.zero_threshold < prev.zero_threshold
            || self.count < prev.count
        {
            return true;
        }
        let mut before = prev.clone();
        before.reduce_resolution(self.schema);
        let t = before.widened_threshold(self.zero_threshold);
        before.set_zero_threshold(t);
        if t > self.zero_threshold {
            // Our buckets straddle the old zero bucket: compare at ours.
            let mut now = self.clone();
            now.set_zero_threshold(now.widened_threshold(t));
            return now.decreased_from(&before);
        }
        self.decreased_from(&before)
    }

    /// Whether any count of `self` is below the same count of `before`
    /// (aligned already).
    fn decreased_from(&self, before: &Histogram) -> bool {
        if self.zero_count < before.zero_count {
            return true;
        }
        [
            (&self.positive, &before.positive),
            (&self.negative, &before.negative),
        ]
        .into_iter()
        .any(|(now, was)| {
            was.iter().any(|&(i, c)| {
                let n = now
                    .binary_search_by_key(&i, |b| b.0)
                    .map_or(0.0, |k| now[k].1);
                n < c
            })
        })
    }
}

/// The surviving share of one bucket when a trim keeps the values below
/// (`upper`) or above `at`, and where its surviving observations are
/// assumed to sit (for the new sum).
fn trim_bucket(b: &crate::Bucket, at: f64, upper: bool, linear: bool) -> (f64, f64) {
    let finite = |x: f64| if x.is_infinite() { 0.0 } else { x };
    if b.lower == f64::NEG_INFINITY {
        // Only custom buckets start at −Inf; their values may lie anywhere below.
        return if upper {
            if at >= b.upper {
                (b.count, 0.0)
            } else if at > 0.0 && b.upper > 0.0 && b.upper.is_finite() {
                (b.count * at / b.upper, at / 2.0)
            } else if b.upper <= 0.0 {
                (b.count, at)
            } else {
                (0.0, finite(b.upper))
            }
        } else if at >= 0.0 && b.upper > at && b.upper.is_finite() {
            (b.count * (1.0 - at / b.upper), (at + b.upper) / 2.0)
        } else {
            (0.0, finite(b.upper))
        };
    }
    if b.upper == f64::INFINITY {
        return if !upper && at >= b.lower {
            (b.count, at)
        } else {
            (0.0, finite(b.lower))
        };
    }
    let below = if at <= b.lower {
        0.0
    } else if at >= b.upper {
        b.count
    } else {
        b.count * b.fraction_below(at, linear)
    };
    if upper {
        (below, middle(b.lower, at, linear))
    } else {
        (b.count - below, middle(at, b.upper, linear))
    }
}

/// The middle of a surviving interval: arithmetic for linear buckets,
/// geometric (with the interval's sign) for exponential ones.
fn middle(lo: f64, hi: f64, linear: bool) -> f64 {
    match (lo.is_infinite(), hi.is_infinite()) {
        (true, true) => 0.0,
        (true, false) if hi > 0.0 => hi / 2.0,
        (true, false) => hi,
        (false, true) => lo,
        _ if linear => (lo + hi) / 2.0,
        _ => (lo * hi).abs().sqrt().copysign(hi),
    }
}

impl Histogram {
    /// PromQL's trim operators: `h </ at` (`upper`) keeps the observations
    /// at or below `at`, `h >/ at` those above it. A bucket `at` falls in
    /// keeps the share of it on the kept side (interpolated as quantiles
    /// are); when anything was cut, count and sum are recomputed from the
    /// surviving buckets, each observation taken at its bucket's middle.
    pub fn trim(&mut self, at: f64, upper: bool) {
        let linear = self.custom_buckets();
        let keep_whole = |b: &crate::Bucket| {
            if upper { b.upper <= at } else { b.lower >= at }
        };
        let cut_whole = |b: &crate::Bucket| {
            if upper { b.lower >= at } else { b.upper <= at }
        };
        let (mut count, mut sum, mut trimmed) = (0.0, 0.0, false);
        let has_negative = self.negative.iter().any(|b| b.1 != 0.0);
        let has_positive = self.positive.iter().any(|b| b.1 != 0.0);
        for positive in [true, false] {
            let n = if positive {
                self.positive.len()
            } else {
                self.negative.len()
            };
            for k in 0..n {
                let (i, c) = if positive {
                    self.positive[k]
                } else {
                    self.negative[k]
                };
                if c == 0.0 {
                    continue;
                }
                let (lo, hi) = self.positive_bounds(i);
                let b = if positive {
                    crate::Bucket {
                        lower: lo,
                        upper: hi,
                        count: c,
                    }
                } else {
                    crate::Bucket {
                        lower: -hi,
                        upper: -lo,
                        count: c,
                    }
                };
                let (kept, mid) = if keep_whole(&b) {
                    (c, middle(b.lower, b.upper, linear))
                } else if cut_whole(&b) {
                    (0.0, 0.0)
                } else {
                    trim_bucket(&b, at, upper, linear)
                };
                count += kept;
                sum += mid * kept;
                if kept != c {
                    trimmed = true;
                    if positive {
                        self.positive[k].1 = kept;
                    } else {
                        self.negative[k].1 = kept;
                    }
                }
            }
        }
        if self.zero_count > 0.0 {
            let mut lo = -self.zero_threshold;
            let mut hi = self.zero_threshold;
            if has_negative && !has_positive {
                hi = 0.0;
            }
            if has_positive && !has_negative {
                lo = 0.0;
            }
            let (share, mid) = if upper {
                if at <= lo {
                    (0.0, 0.0)
                } else if at >= hi {
                    (1.0, (lo + hi) / 2.0)
                } else {
                    ((at - lo) / (hi - lo), (lo + at) / 2.0)
                }
            } else if at <= lo {
                (1.0, (lo + hi) / 2.0)
            } else if at >= hi {
                (0.0, 0.0)
            } else {
                ((hi - at) / (hi - lo), (at + hi) / 2.0)
            };
            let kept = self.zero_count * share;
            if kept != self.zero_count {
                self.zero_count = kept;
                trimmed = true;
            }
            count += kept;
            sum += mid * kept;
        }
        if trimmed {
            self.count = count;
            self.sum = sum;
            self.compact();
        }
    }
}
