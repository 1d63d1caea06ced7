//! Detection: does the window hold an incident? Only user-facing
//! indicators open one — the entry points' error ratio and latency, and how
//! far consumers lag behind their topics — each compared with the same
//! indicator in the comparable windows of the calendar. Volume matters: a
//! doubled error ratio on three requests is noise, so errors are tested as
//! counts against the baseline ratio, and latency against the spread of the
//! comparable windows with a floor relative to the normal value.

use crate::profile::Profile;
use crate::report::Symptom;
use crate::sketch::Sketch;

/// Robust deviations an indicator must reach to be a symptom.
pub const MIN_SCORE: f64 = 5.0;
/// Failed requests beyond the normal count an error symptom needs.
pub const MIN_EXCESS_ERRORS: f64 = 10.0;
/// Requests a window needs for its latency to be compared.
pub const MIN_REQUESTS: u64 = 20;

/// Median and robust spread (1.4826 × MAD) of `v`.
pub fn median_spread(v: &mut [f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let med = v[v.len() / 2];
    let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
    dev.sort_by(f64::total_cmp);
    Some((med, 1.4826 * dev[dev.len() / 2]))
}

/// A latency-like indicator in the window against its values in the
/// baseline windows: a score in robust deviations, with the spread floored
/// at `rel_floor` of the normal value (so a quiet, steady baseline does not
/// make every wobble an incident).
fn deviation(
    observed: f64,
    baseline: &mut [f64],
    rel_floor: f64,
    abs_floor: f64,
) -> Option<(f64, f64)> {
    let (med, spread) = median_spread(baseline)?;
    let d = spread.max(rel_floor * med).max(abs_floor);
    Some((med, (observed - med) / d))
}

fn sketch_of<'a>(p: &'a Profile, entry: &str) -> Option<&'a Sketch> {
    p.entry_latency
        .get(entry)
        .filter(|s| s.count() >= MIN_REQUESTS)
}

/// What detection found: the symptoms, and the largest deviation of each
/// kind of indicator even below the threshold (a second, milder cause
/// beside a loud one still deserves its share of the ranking).
#[derive(Debug, Clone, Default)]
pub struct Detection {
    /// Indicators outside their normal.
    pub symptoms: Vec<Symptom>,
    /// The largest error-count deviation of any entry point.
    pub error_score: f64,
    /// The largest latency deviation of any entry point.
    pub latency_score: f64,
}

/// The symptoms of `w` against the comparable windows `bases` (and their
/// merge, `merged`).
pub fn symptoms(w: &Profile, bases: &[Profile], merged: &Profile) -> Detection {
    let mut d = Detection::default();
    let out = &mut d.symptoms;
    let mut entries: Vec<&String> = w.entry_counts.keys().collect();
    entries.sort();
    for entry in entries {
        let (n, k) = w.entry_counts[entry];
        let (nb, kb) = merged.entry_counts.get(entry).copied().unwrap_or((0, 0));
        // Baseline ratio with a pseudo-count: an unseen error is not
        // impossible, just rare.
        let p0 = (kb as f64 + 0.5) / (nb as f64 + 50.0);
        let expected = n as f64 * p0;
        let excess = k as f64 - expected;
        let z = excess / (expected * (1.0 - p0) + 1.0).sqrt();
        let ratio = if n > 0 { k as f64 / n as f64 } else { 0.0 };
        if excess >= MIN_EXCESS_ERRORS {
            d.error_score = d.error_score.max(z);
        }
        if excess >= MIN_EXCESS_ERRORS && z >= MIN_SCORE && ratio >= 1.5 * p0 + 0.002 {
            out.push(Symptom {
                node: entry.clone(),
                indicator: "error_ratio".into(),
                baseline: p0,
                observed: ratio,
                score: z,
            });
        }
        let Some(obs) = sketch_of(w, entry) else {
            continue;
        };
        for (name, q, min_ratio) in [
            ("latency_mean", None, 1.3),
            ("latency_p99", Some(0.99), 1.5),
        ] {
            let value = |s: &Sketch| match q {
                None => s.mean(),
                Some(q) => s.quantile(q),
            };
            let mut base: Vec<f64> = bases
                .iter()
                .filter_map(|b| sketch_of(b, entry))
                .filter_map(value)
                .collect();
            if base.len() < 2 {
                // Too few comparable windows for a spread: the merged
                // baseline alone, with a wider floor.
                base = sketch_of(merged, entry)
                    .and_then(value)
                    .into_iter()
                    .collect();
            }
            let Some(o) = value(obs) else { continue };
            let floor = if base.len() < 2 { 0.25 } else { 0.15 };
            let Some((med, score)) = deviation(o, &mut base, floor, 0.001) else {
                continue;
            };
            if o >= min_ratio * med {
                d.latency_score = d.latency_score.max(score);
            }
            if score >= MIN_SCORE && o >= min_ratio * med {
                out.push(Symptom {
                    node: entry.clone(),
                    indicator: name.into(),
                    baseline: med,
                    observed: o,
                    score,
                });
            }
        }
    }
    let mut topics: Vec<&String> = w.lag.keys().collect();
    topics.sort();
    for topic in topics {
        let obs = &w.lag[topic];
        if obs.count() < MIN_REQUESTS {
            continue;
        }
        let Some(o) = obs.quantile(0.9) else { continue };
        let mut base: Vec<f64> = bases
            .iter()
            .filter_map(|b| b.lag.get(topic))
            .filter(|s| s.count() >= 5)
            .filter_map(|s| s.quantile(0.9))
            .collect();
        if base.is_empty() {
            base.extend(merged.lag.get(topic).and_then(|s| s.quantile(0.9)));
        }
        // A lag under a second is not an incident, whatever its spread.
        if let Some((med, score)) = deviation(o, &mut base, 0.5, 1.0)
            && score >= MIN_SCORE
            && o >= 3.0 * med
        {
            out.push(Symptom {
                node: topic.clone(),
                indicator: "consumer_lag".into(),
                baseline: med,
                observed: o,
                score,
            });
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window of `n` requests to `entry`, `errors` failed, each taking
    /// about `secs`.
    fn window(n: u64, errors: u64, secs: f64) -> Profile {
        let mut p = Profile::default();
        let mut s = Sketch::default();
        for i in 0..n {
            s.add(secs * (0.9 + 0.2 * (i % 10) as f64 / 10.0));
        }
        p.entry_latency.insert("gateway".into(), s);
        p.entry_counts.insert("gateway".into(), (n, errors));
        p.requests = n;
        p.errors = errors;
        p
    }

    fn detect(w: &Profile, bases: &[Profile]) -> Vec<String> {
        let mut merged = Profile::default();
        for b in bases {
            merged.merge(b);
        }
        symptoms(w, bases, &merged)
            .symptoms
            .into_iter()
            .map(|s| s.indicator)
            .collect()
    }

    #[test]
    fn a_seasonal_surge_is_normal_and_the_same_off_season_is_not() {
        // The open: four times the traffic, twice the latency, and so it
        // was at the open of the comparable days.
        let open = window(4000, 4, 0.080);
        let opens: Vec<Profile> = (0..5).map(|_| window(4000, 4, 0.080)).collect();
        assert!(detect(&open, &opens).is_empty());
        // The same window compared with a quiet hour's days.
        let quiet: Vec<Profile> = (0..5).map(|_| window(1000, 1, 0.040)).collect();
        assert_eq!(detect(&open, &quiet), vec!["latency_mean", "latency_p99"]);
    }

    #[test]
    fn a_doubled_error_rate_on_a_few_requests_is_noise() {
        let bases: Vec<Profile> = (0..5).map(|_| window(100, 3, 0.05)).collect();
        assert!(detect(&window(100, 6, 0.05), &bases).is_empty());
        assert_eq!(
            detect(&window(2000, 300, 0.05), &bases),
            vec!["error_ratio"]
        );
    }

    #[test]
    fn median_and_spread() {
        let (m, s) = median_spread(&mut [1.0, 2.0, 3.0, 4.0, 100.0]).unwrap();
        assert_eq!(m, 3.0);
        assert!((s - 1.4826).abs() < 1e-9);
        assert!(median_spread(&mut []).is_none());
    }
}
