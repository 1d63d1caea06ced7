//! Compensated summation: PromQL sums floats this way, and histograms
//! field by field, so that large values that cancel do not wipe out the
//! small ones between them.

/// Kahan-Babuška (Neumaier) compensated sum, as Prometheus sums floats.
#[derive(Debug, Default, Clone, Copy)]
pub struct KahanSum {
    sum: f64,
    c: f64,
}

impl KahanSum {
    /// Adds `v`.
    pub fn add(&mut self, v: f64) {
        let t = self.sum + v;
        if self.sum.abs() >= v.abs() {
            self.c += (self.sum - t) + v;
        } else {
            self.c += (v - t) + self.sum;
        }
        self.sum = t;
    }

    /// The sum so far.
    pub fn value(&self) -> f64 {
        // Inf + -Inf compensation would give NaN where the plain sum is Inf.
        if self.sum.is_infinite() {
            self.sum
        } else {
            self.sum + self.c
        }
    }
}
